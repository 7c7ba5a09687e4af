"""Reseller mode end to end: two real servers, one in reseller mode (`CUTOUT_ENGINE=pixian`,
served as in production: nginx in front of gunicorn) whose upstream is the other (a plain
gunicorn, local engine), each with its own data folder and database, and a small TCP proxy
between them that can drop an answer after the upstream has sent it."""

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.support_gunicorn import (
    REPO,
    Gunicorn,
    gunicorn,
    nginx_site,
    prepare_site,
    server_env,
)

MARKUP = Decimal("1.5")
RESELLER_CREDITS = 30
UPSTREAM_CREDITS = 40
REMOVE_REQUEST = b"POST /api/v2/remove-background "


class DroppingProxy:
    """Forwards 127.0.0.1 TCP connections to `target`; counts the removal requests that pass.
    `drop_next()`: the next answer from the target is read whole, then the client's
    connection is closed without a byte of it (the answer lost on the way back)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.requests = 0
        self.dropped = 0
        self._drop = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_next(self) -> None:
        self._drop.set()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while chunk := client.recv(65536):
                with self._lock:
                    self.requests += chunk.count(REMOVE_REQUEST)
                upstream.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := upstream.recv(65536):
                if self._drop.is_set():
                    self._swallow(upstream, chunk)
                    self._drop.clear()
                    self.dropped += 1
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    @staticmethod
    def _swallow(upstream: socket.socket, data: bytes) -> None:
        """Read one whole answer (by its Content-Length) and throw it away."""
        while b"\r\n\r\n" not in data:
            data += upstream.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += upstream.recv(65536)


def _close(sock: socket.socket) -> None:
    # shutdown() first: a plain close() leaves the other thread's recv() holding the socket.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@dataclass
class Pair:
    reseller: Gunicorn
    upstream: Gunicorn
    proxy: DroppingProxy
    reseller_dir: Path
    upstream_dir: Path
    customer: tuple[str, str]
    operator: tuple[str, str]
    reseller_database: str | None = None
    upstream_database: str | None = None
    reseller_env: dict = field(default_factory=dict)

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """`python manage.py ARGS` on the reseller's site, as its operator would run it."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=server_env(self.reseller_dir, **self.reseller_env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def credits(self, server: Gunicorn, key: tuple[str, str]) -> Decimal:
        answer = httpx.get(f"{server.url}/api/v2/account", auth=key, timeout=30)
        assert answer.status_code == 200, answer.text
        return Decimal(str(json.loads(answer.text, parse_float=Decimal)["credits"]))

    def customer_credits(self) -> Decimal:
        return self.credits(self.reseller, self.customer)

    def upstream_credits(self) -> Decimal:
        return self.credits(self.upstream, self.operator)


def check_ledger(data_dir: Path, database: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check_ledger"],
        cwd=REPO,
        env=server_env(data_dir, DJANGO_DEBUG="0", DATABASE_URL=database),
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_EMAIL_BACKEND": None,
    "WEB_CONCURRENCY": "1",
    "PYTHONUNBUFFERED": "1",
    "CUTOUT_ALLOW_LOOPBACK_URLS": "1",
}


@contextmanager
def served_pair(
    upstream_dir: Path, reseller_dir: Path, databases: tuple[str | None, str | None] = (None, None)
) -> Iterator[Pair]:
    """The upstream (local engine) and the reseller in front of it through the proxy;
    `databases` are the two servers' DATABASE_URLs (None: SQLite in each data folder)."""
    upstream_env = {**PRODUCTION, "DATABASE_URL": databases[0]}
    operator = prepare_site(upstream_dir, credits=UPSTREAM_CREDITS, **upstream_env)
    with gunicorn(upstream_dir, **upstream_env) as upstream:
        proxy = DroppingProxy((upstream.host, upstream.port))
        reseller_env = {
            **PRODUCTION,
            "DATABASE_URL": databases[1],
            "CUTOUT_ENGINE": "pixian",
            "CUTOUT_UPSTREAM_URL": proxy.url,
            "CUTOUT_UPSTREAM_ID": operator[0],
            "CUTOUT_UPSTREAM_SECRET": operator[1],
            "CUTOUT_UPSTREAM_BACKOFF_S": "0.5",
            "CUTOUT_RESELLER_MARKUP": str(MARKUP),
        }
        customer = prepare_site(reseller_dir, credits=RESELLER_CREDITS, **reseller_env)
        try:
            # The reseller as documented for production: `manage.py serve` (nginx, gunicorn).
            with nginx_site(reseller_dir, **reseller_env) as reseller:
                yield Pair(
                    reseller,
                    upstream,
                    proxy,
                    reseller_dir,
                    upstream_dir,
                    customer,
                    operator,
                    reseller_env["DATABASE_URL"],
                    upstream_env["DATABASE_URL"],
                )
        finally:
            proxy.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[Pair]:
    """The two servers on SQLite, shared by a module's tests (each takes seconds to start)."""
    with served_pair(tmp_path_factory.mktemp("upstream"), tmp_path_factory.mktemp("reseller")) as p:
        yield p


def fresh_postgres_databases(url: str, names: tuple[str, str]) -> tuple[str, str]:
    """Two empty databases beside `url`'s (dropped first if a past run left them)."""
    import psycopg

    base = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{names[0]}", f"{base}/{names[1]}"
