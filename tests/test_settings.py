"""Settings are read in fresh interpreters, since Django reads them once per process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parent.parent


def settings_of(env: dict, expr: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CUTOUT_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'webapp.settings'; "
        f"from django.conf import settings; print({expr})"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True
    )


def test_debug_off_refuses_a_missing_secret_key(tmp_path):
    result = settings_of({"CUTOUT_DATA_DIR": str(tmp_path)}, "settings.SECRET_KEY")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_debug_generates_and_keeps_a_secret_key_in_the_data_folder(tmp_path):
    env = {"CUTOUT_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "1"}
    first = settings_of(env, "settings.SECRET_KEY").stdout.strip()
    second = settings_of(env, "settings.SECRET_KEY").stdout.strip()
    assert len(first) >= 50 and first == second
    assert (tmp_path / "secret_key").read_text().strip() == first


def test_defaults_are_sqlite_in_the_data_folder_and_no_https(tmp_path):
    env = {"CUTOUT_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "1"}
    out = settings_of(
        env,
        "settings.DATABASES['default']['NAME'], settings.CACHES['default']['BACKEND'], "
        "getattr(settings, 'SECURE_SSL_REDIRECT', False)",
    ).stdout
    assert str(tmp_path / "db.sqlite3") in out
    assert "LocMemCache" in out and "False" in out


def test_database_redis_and_s3_come_from_the_environment(tmp_path):
    env = {
        "DJANGO_DEBUG": "1",
        "CUTOUT_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/cutout",
        "REDIS_URL": "redis://127.0.0.1:6379/1",
        "AWS_STORAGE_BUCKET_NAME": "photos",
    }
    out = settings_of(
        env,
        "settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
        "settings.STORAGES['default']['BACKEND']",
    ).stdout
    assert "postgresql" in out and "RedisCache" in out and "S3Storage" in out


def test_https_switch(tmp_path):
    env = {"DJANGO_DEBUG": "1", "CUTOUT_DATA_DIR": str(tmp_path), "CUTOUT_HTTPS": "1"}
    out = settings_of(
        env,
        "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, "
        "settings.SESSION_COOKIE_SECURE, settings.SECURE_PROXY_SSL_HEADER",
    ).stdout
    assert "True 31536000 True ('HTTP_X_FORWARDED_PROTO', 'https')" in out


def test_malformed_values_are_configuration_errors(tmp_path):
    result = settings_of(
        {"DJANGO_DEBUG": "maybe", "CUTOUT_DATA_DIR": str(tmp_path)}, "settings.DEBUG"
    )
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr


def test_mail_goes_to_the_console_in_debug_and_nowhere_in_production_unless_configured(tmp_path):
    base = {"CUTOUT_DATA_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "s" * 50}
    expr = "settings.EMAIL_BACKEND"
    debug = settings_of({**base, "DJANGO_DEBUG": "1"}, expr).stdout.strip()
    assert debug == "django.core.mail.backends.console.EmailBackend"
    assert settings_of(base, expr).stdout.strip() == "django.core.mail.backends.dummy.EmailBackend"
    smtp = {
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "DJANGO_EMAIL_HOST": "mail.example.com",
        "DJANGO_EMAIL_PORT": "587",
        "DJANGO_EMAIL_HOST_USER": "cutout",
        "DJANGO_EMAIL_USE_TLS": "1",
    }
    out = settings_of(
        {**base, **smtp},
        "settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT, "
        "settings.EMAIL_HOST_USER, settings.EMAIL_USE_TLS",
    ).stdout.strip()
    assert out == "django.core.mail.backends.smtp.EmailBackend mail.example.com 587 cutout True"


@pytest.mark.parametrize(
    "debug, backend, warning",
    [
        (False, "django.core.mail.backends.dummy.EmailBackend", "No e-mail backend is configured"),
        (
            False,
            "django.core.mail.backends.console.EmailBackend",
            "links, live tokens, are written",
        ),
        (False, "django.core.mail.backends.smtp.EmailBackend", None),
        (True, "django.core.mail.backends.console.EmailBackend", None),
    ],
)
def test_the_system_check_warns_about_production_without_mail(settings, debug, backend, warning):
    settings.DEBUG = debug
    settings.EMAIL_BACKEND = backend
    found = [m for m in checks.run_checks() if m.id == "cutout.W001"]
    if warning is None:
        assert found == []
    else:
        [message] = found
        assert message.level == checks.WARNING and warning in message.msg
