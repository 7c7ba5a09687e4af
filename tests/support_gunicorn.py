"""A real gunicorn on 127.0.0.1, started from the checkout's gunicorn.conf.py in a subprocess
with its own data folder (SQLite, logs); the models come from the checkout's."""

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parent.parent
SECRET = "tests-only-secret-key-0123456789-abcdefghijklmnop"
SERVED_EMAIL = "carol@example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def server_env(data_dir: Path, **env: str | None) -> dict[str, str]:
    """The test process's environment for a server with its own data folder; a name given
    None is left out."""
    merged = {
        **os.environ,
        "DJANGO_SECRET_KEY": SECRET,
        "CUTOUT_MODEL": "u2netp",
        "CUTOUT_DATA_DIR": str(data_dir),
        # Set by the browser tests' plugin in this process; never in a deployment.
        "DJANGO_ALLOW_ASYNC_UNSAFE": None,
        "DATABASE_URL": None,
        # Production's engine pool, not the suite's in-process engine (tests/envdefaults.py).
        "CUTOUT_ENGINE_PROCESSES": None,
        "CUTOUT_INFERENCE_THREADS": None,
        # Each server's limits apart from the suite's and other servers' when REDIS_URL is set.
        "CUTOUT_CACHE_PREFIX": f"{data_dir.name}-{abs(hash(str(data_dir)))}",
        **env,
    }
    return {name: value for name, value in merged.items() if value is not None}


@dataclass
class Gunicorn:
    url: str
    log_path: Path
    host: str
    port: int
    key: tuple[str, str] = ("", "")

    def log(self) -> str:
        return self.log_path.read_text()

    def log_once_it_shows(self, line: str, wait_s: float = 20) -> str:
        """The log, once `line` is in it: gunicorn writes the access line after the answer."""
        deadline = time.monotonic() + wait_s
        while line not in (text := self.log()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return text


@contextmanager
def gunicorn(data_dir: Path, **env: str | None) -> Iterator[Gunicorn]:
    """Start gunicorn, wait until /readyz answers 200, stop it on exit."""
    port = free_port()
    models = data_dir / "models"
    if not models.exists():
        models.symlink_to(REPO / "var" / "models")
    log_path = data_dir / "gunicorn.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=REPO,
            env=server_env(data_dir, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server, log_path)
        yield Gunicorn(url=url, log_path=log_path, host="127.0.0.1", port=port)
    finally:
        server.terminate()
        server.wait(60)


def prepare_site(data_dir: Path, credits: int = 0, **env: str | None) -> tuple[str, str]:
    """Migrate a fresh site's database in `data_dir`, create `SERVED_EMAIL` with an API key
    (and `credits`); returns (key id, secret)."""
    setup = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from removal import keys\n"
        "from webapp.models import User\n"
        f"user = User.objects.create_user({SERVED_EMAIL!r}, {PASSWORD!r})\n"
        "key, secret = keys.create_key(user, 'test')\n"
        f"if {credits}: call_command('grant_credits', {SERVED_EMAIL!r}, '{credits}')\n"
        "print(key.key_id, secret)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", setup],
        cwd=REPO,
        env=server_env(data_dir, DJANGO_SETTINGS_MODULE="webapp.settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    key_id, secret = done.stdout.split()[-2:]
    return key_id, secret


def wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status, _ = get(f"{url}/readyz")
            if status == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    assert status == 200, log_path.read_text()[-3000:]


@contextmanager
def nginx_site(data_dir: Path, **env: str | None) -> Iterator[Gunicorn]:
    """The production set-up: `manage.py serve` (nginx in front of gunicorn) on a free port,
    stopped on exit; the log has both servers' lines."""
    port = free_port()
    models = data_dir / "models"
    if not models.exists():
        models.symlink_to(REPO / "var" / "models")
    log_path = data_dir / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=REPO,
            env=server_env(data_dir, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server, log_path)
        yield Gunicorn(url=url, log_path=log_path, host="127.0.0.1", port=port)
    finally:
        server.terminate()
        server.wait(60)


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Gunicorn]:
    """One gunicorn for the session, as in production: debug off and no mail configured, on a
    migrated SQLite database with one account (`SERVED_EMAIL`, `PASSWORD`) and its API key
    (`served.key`)."""
    data_dir = tmp_path_factory.mktemp("served")
    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_EMAIL_BACKEND": None,
        "WEB_CONCURRENCY": "1",
        # A console mail backend's output would reach the log at once, not at exit.
        "PYTHONUNBUFFERED": "1",
    }
    key_id, secret = prepare_site(data_dir, **production)
    with gunicorn(data_dir, **production) as server:
        server.key = (key_id, secret)
        yield server


def connect(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=60)


def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def post_form(server, path: str, fields: dict[str, str], cookies: dict[str, str] | None = None):
    """A form post with a CSRF token (the double-submit pair a browser would carry)."""
    csrf = (cookies or {}).get("csrftoken", "k" * 32)
    jar = {"csrftoken": csrf, **(cookies or {})}
    conn = connect(server)
    conn.request(
        "POST",
        path,
        body=urlencode({**fields, "csrfmiddlewaretoken": csrf}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{name}={value}" for name, value in jar.items()),
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response
