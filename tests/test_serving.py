"""Production serving: gunicorn's configuration, a real gunicorn that warms its engine before
it takes traffic, and `check --deploy` passing with a production environment."""

import os
import re
import runpy
import secrets
import subprocess
import sys

from tests.support_gunicorn import REPO, get, gunicorn


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


def test_gunicorn_warms_the_engine_in_each_worker_before_serving(tmp_path):
    with gunicorn(tmp_path, WEB_CONCURRENCY="2") as server:
        assert get(f"{server.url}/healthz") == (200, b'{"status": "ok"}')
    text = server.log()
    booted = re.findall(r"Booting worker with pid: (\d+)", text)
    warmed = re.findall(r"worker (\d+): engine loaded and warm", text)
    assert len(booted) == 2 and sorted(booted) == sorted(warmed)
    # Each worker is warm before it answers: its warm-up line precedes every access line it
    # wrote. (Another worker may answer while this one is still warming.)
    for pid in warmed:
        warm_at = text.index(f"worker {pid}: engine loaded")
        served_at = [m.start() for m in re.finditer(rf'"GET /[^\n]* pid=<{pid}>', text)]
        assert all(warm_at < at for at in served_at)
    assert re.search(r'"GET /healthz[^\n]* pid=<\d+>', text)


def test_check_deploy_passes_with_a_production_environment():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "cutout.example.com",
        "CUTOUT_HTTPS": "1",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
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
