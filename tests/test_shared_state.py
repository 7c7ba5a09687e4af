"""Several hosts (`CUTOUT_HOSTS` > 1) with state that would stay on one host: the system check
(cutout.E201-E205) fails `manage.py check`, and the WSGI application refuses to load, so
gunicorn's worker never boots. Settings are read in fresh interpreters, as a host reads them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

from tests.support_gunicorn import SECRET

ROOT = Path(__file__).resolve().parent.parent
HOST_IDS = {"cutout.E201", "cutout.E202", "cutout.E203", "cutout.E204", "cutout.E205"}
# Everything shared: addresses only, nothing is connected to by `check`.
SHARED = {
    "DATABASE_URL": "postgres://cutout:cutout@127.0.0.1:5432/cutout",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "cutout-files",
    "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "DJANGO_SECRET_KEY": SECRET,
}


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    ours = ("DJANGO_", "CUTOUT_", "AWS_", "DATABASE_URL", "REDIS_URL")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    # The mail warning (cutout.W001) is another check's business.
    base = {
        "CUTOUT_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    }
    return subprocess.run(
        [sys.executable, *args],
        env={**clean, **base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def reported_ids(output: str) -> set[str]:
    return {check_id for check_id in HOST_IDS if check_id in output}


def test_several_hosts_on_local_backends_fail_the_check_naming_each_one(tmp_path):
    done = run(["manage.py", "check"], tmp_path, CUTOUT_HOSTS="2", DJANGO_DEBUG="1")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    # SQLite, local memory cache, local files and a key from the data folder; the sessions
    # live in the database, so E204 follows the database, not the cache.
    assert reported_ids(output) == {"cutout.E201", "cutout.E202", "cutout.E203", "cutout.E205"}
    assert "SQLite" in output and "LocMemCache" in output and "REDIS_URL" in output


def test_several_hosts_on_shared_services_pass_the_check(tmp_path):
    done = run(["manage.py", "check"], tmp_path, CUTOUT_HOSTS="3", **SHARED)
    assert done.returncode == 0, done.stderr
    assert reported_ids(done.stdout + done.stderr) == set()


@pytest.mark.parametrize(
    "missing, check_id",
    [
        ("DATABASE_URL", "cutout.E201"),
        ("REDIS_URL", "cutout.E202"),
        ("AWS_STORAGE_BUCKET_NAME", "cutout.E203"),
    ],
)
def test_one_local_backend_among_shared_ones_refuses_the_wsgi_application(
    tmp_path, missing, check_id
):
    """What gunicorn's worker does first: import the WSGI application."""
    env = {name: value for name, value in SHARED.items() if name != missing}
    done = run(["-c", "import webapp.wsgi"], tmp_path, CUTOUT_HOSTS="2", **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "CUTOUT_HOSTS=2" in done.stderr
    assert reported_ids(done.stderr) == {check_id}


def test_one_host_keeps_its_local_backends_without_a_word(tmp_path):
    done = run(["-c", "import webapp.wsgi; print('loaded')"], tmp_path, DJANGO_SECRET_KEY=SECRET)
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout and reported_ids(done.stderr) == set()


def test_a_worker_host_with_local_state_logs_it_loudly_at_start(tmp_path):
    """Every process that loads Django (workers, commands) logs each problem at ERROR."""
    code = "import django; django.setup()"
    done = run(["-c", code], tmp_path, CUTOUT_HOSTS="2", **{**SHARED, "REDIS_URL": ""})
    assert done.returncode == 0, done.stderr
    assert "ERROR webapp.checks cutout.E202: CUTOUT_HOSTS=2" in done.stderr


@pytest.mark.parametrize(
    "engine, local",
    [
        ("django.contrib.sessions.backends.cache", True),
        ("django.contrib.sessions.backends.cached_db", True),
        ("django.contrib.sessions.backends.file", True),
        ("django.contrib.sessions.backends.db", False),
        ("django.contrib.sessions.backends.signed_cookies", False),
    ],
)
def test_sessions_kept_on_one_host_are_refused(settings, engine, local):
    settings.CUTOUT_HOSTS = 2
    settings.SESSION_ENGINE = engine
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    found = {m.id for m in checks.run_checks() if m.id in HOST_IDS}
    assert ("cutout.E204" in found) is local
    assert all(m.level == checks.ERROR for m in checks.run_checks() if m.id in HOST_IDS)
