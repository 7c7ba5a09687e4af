"""A real gunicorn on 127.0.0.1, started from the checkout's gunicorn.conf.py in a subprocess
with its own data folder (SQLite, logs); the models come from the checkout's."""

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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "tests-only-secret-key-0123456789-abcdefghijklmnop"


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


def server_env(data_dir: Path, **env: str) -> dict[str, str]:
    """The test process's environment for a server with its own data folder."""
    merged = {
        **os.environ,
        "DJANGO_SECRET_KEY": SECRET,
        "CUTOUT_MODEL": "u2netp",
        "CUTOUT_DATA_DIR": str(data_dir),
        **env,
    }
    merged.pop("DATABASE_URL", None)
    # Set by the browser tests' plugin in this process; never in a deployment.
    merged.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return merged


@dataclass
class Gunicorn:
    url: str
    log_path: Path
    host: str
    port: int

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def gunicorn(data_dir: Path, **env: str) -> Iterator[Gunicorn]:
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
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, _ = get(f"{url}/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert status == 200, log_path.read_text()[-2000:]
        yield Gunicorn(url=url, log_path=log_path, host="127.0.0.1", port=port)
    finally:
        server.terminate()
        server.wait(60)
