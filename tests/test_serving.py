"""Production serving: gunicorn's configuration, a real gunicorn that warms its engine before
it takes traffic, and `check --deploy` passing with a production environment."""

import os
import re
import runpy
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "tests-only-secret-key-0123456789-abcdefghijklmnop"


def gunicorn_config(**env: str) -> dict:
    saved = dict(os.environ)
    try:
        for name in ("WEB_CONCURRENCY", "CUTOUT_INFERENCE_THREADS"):
            os.environ.pop(name, None)
        os.environ.update(env)
        return runpy.run_path(str(REPO / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def test_gunicorn_defaults_to_one_single_threaded_worker_per_core():
    config = gunicorn_config()
    assert config["workers"] == cores()
    assert config["threads"] == 1
    assert config["timeout"] >= 200
    assert config["graceful_timeout"] >= config["timeout"]
    assert "preload_app" not in config


def test_gunicorn_splits_the_cores_between_workers_and_inference_threads():
    config = gunicorn_config(CUTOUT_INFERENCE_THREADS="2")
    assert config["workers"] == max(1, cores() // 2)
    assert gunicorn_config(WEB_CONCURRENCY="3")["workers"] == 3


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


def test_gunicorn_warms_the_engine_in_each_worker_before_serving(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": SECRET,
        "CUTOUT_MODEL": "u2netp",
        "CUTOUT_DATA_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "2",
    }
    # The models live in the checkout's data folder; the temporary one gets a link to them.
    (tmp_path / "models").symlink_to(REPO / "var" / "models")
    env.pop("DATABASE_URL", None)
    log_path = tmp_path / "gunicorn.log"
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
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert status == 200, log_path.read_text()[-2000:]
        assert get(f"http://127.0.0.1:{port}/healthz") == (200, b'{"status": "ok"}')
    finally:
        server.terminate()
        server.wait(60)
    text = log_path.read_text()
    booted = re.findall(r"Booting worker with pid: (\d+)", text)
    warmed = re.findall(r"worker (\d+): engine loaded and warm", text)
    assert len(booted) == 2 and sorted(booted) == sorted(warmed)
    # Warm before the first request: each warm-up line precedes every access-log line.
    first_request = text.index('"GET /')
    assert all(text.index(f"worker {pid}: engine loaded") < first_request for pid in warmed)


def test_check_deploy_passes_with_a_production_environment():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "cutout.example.com",
        "CUTOUT_HTTPS": "1",
    }
    # Set by the browser tests' plugin in this process; never in a deployment.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
