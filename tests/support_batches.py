"""Batch helpers: the API's paths, a JSON client, running tickets in this process, a local
webhook receiver (a real HTTP server on 127.0.0.1), and real worker processes
(`manage.py db_worker`, the queue's own command) on the test database."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import Client

from billing.models import LedgerEntry
from tests.support_api import basic
from tests.support_gunicorn import REPO, server_env

BATCHES = "/api/v2/batches"
# The machine may be busy (CI, other suites): room for slow inference, never a bound on speed.
WAIT_S = 300


def api(key: tuple[str, str]) -> Client:
    return Client(HTTP_AUTHORIZATION=basic(*key))


def submit(client: Client, body: dict, **headers: str):
    return client.post(BATCHES, json.dumps(body), content_type="application/json", **headers)


def run_tickets(limit: int = 200) -> int:
    """Work queued items in this process, as a worker would, until none is ready."""
    from batches import work

    done = 0
    while done < limit and work.work_next():
        done += 1
    return done


def charges_for(batch_id: str) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(kind="charge", reference__startswith=f"batch:{batch_id}:")
    )


def charged_total(batch_id: str) -> Decimal:
    return -sum((entry.amount for entry in charges_for(batch_id)), Decimal(0))


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[Receiver]:
    """A local HTTP server that keeps every POST (headers, body) and answers `status`."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            receiver.arrived.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def database_url() -> str:
    """The test database (what pytest-django created) as a DATABASE_URL for subprocesses."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


@contextmanager
def workers(
    data_dir: Path, count: int, *, separate: bool = False, **env: str
) -> Iterator[list[subprocess.Popen]]:
    """`count` db_worker processes on the test database, logging to `data_dir`/worker-N.log.

    They share `data_dir` as their data folder (so their media folder), or with `separate`
    each has its own (`data_dir`/worker-N), as workers on other hosts would."""
    started = []
    for index in range(count):
        home = data_dir / f"worker-{index}" if separate else data_dir
        home.mkdir(exist_ok=True)
        models = home / "models"
        if not models.exists():
            models.symlink_to(REPO / "var" / "models")
        log = open(data_dir / f"worker-{index}.log", "w")  # noqa: SIM115  (closed below)
        started.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "db_worker",
                        "--no-reload",
                        "--no-startup-delay",
                        "--interval",
                        "0.2",
                    ],
                    cwd=REPO,
                    env=server_env(
                        home,
                        **{
                            "DATABASE_URL": database_url(),
                            "CUTOUT_ALLOW_LOOPBACK_URLS": "1",
                            **env,
                        },
                    ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    try:
        yield [process for process, _ in started]
    finally:
        for process, _log in started:
            if process.poll() is None:
                process.terminate()
        for process, log in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def logs(data_dir: Path) -> str:
    return "\n".join(path.read_text()[-3000:] for path in sorted(data_dir.glob("worker-*.log")))


def wait_until(condition: Callable[[], bool], data_dir: Path, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen; workers:\n{logs(data_dir)}"
        time.sleep(0.2)
