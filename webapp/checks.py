"""Start-up checks: system checks (`manage.py check`, migrate, serve, db_worker) and, since
gunicorn runs no checks, a log line when the app loads (webapp/apps.py) and a refusal when the
WSGI application loads (webapp/wsgi.py).

- Mail (cutout.W001): a production server that would drop or log sign-up mails.
- Several hosts (cutout.E201-E205): with `CUTOUT_HOSTS` above 1, every piece of state that a
  second host needs must live in a shared service, never in a process's memory or a local file.
"""

import logging
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DUMMY = "django.core.mail.backends.dummy.EmailBackend"
LOGGING_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}


def mail_problem() -> str:
    """What is wrong with the mail set-up of a production server ("" when nothing is)."""
    if settings.DEBUG:
        return ""
    if settings.EMAIL_BACKEND == DUMMY:
        return (
            "No e-mail backend is configured (DJANGO_EMAIL_BACKEND): sign-up and password-reset "
            "mails are dropped, so no one can sign up or reset a password."
        )
    if settings.EMAIL_BACKEND in LOGGING_BACKENDS:
        return (
            f"DJANGO_EMAIL_BACKEND is {settings.EMAIL_BACKEND} with debug off: sign-up and "
            "password-reset links, live tokens, are written where logs go."
        )
    return ""


@checks.register()
def check_mail(app_configs: list | None, **kwargs: Any) -> list[checks.CheckMessage]:
    problem = mail_problem()
    hint = "Set DJANGO_EMAIL_BACKEND and DJANGO_EMAIL_HOST etc. (README, configuration)."
    return [checks.Warning(problem, hint=hint, id="cutout.W001")] if problem else []


def warn_at_start() -> None:
    problem = mail_problem()
    if problem:
        logger.warning(problem)
    for check_id, problem in shared_state_problems():
        logger.error("%s: CUTOUT_HOSTS=%s: %s", check_id, settings.CUTOUT_HOSTS, problem)


# --- several hosts ------------------------------------------------------------------------------

# Cache backends that keep their entries in this process or on this disk.
LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.dummy.DummyCache",
}
SESSIONS_IN_CACHE = {
    "django.contrib.sessions.backends.cache",
    "django.contrib.sessions.backends.cached_db",
}
HOSTS_HINT = (
    "CUTOUT_HOSTS > 1 needs DATABASE_URL (PostgreSQL), REDIS_URL, AWS_STORAGE_BUCKET_NAME (S3) "
    "and one DJANGO_SECRET_KEY on every host (README, 'Running on several machines')."
)


def _local_cache() -> bool:
    return settings.CACHES["default"]["BACKEND"] in LOCAL_CACHES


def _local_storage() -> bool:
    backend = import_string(settings.STORAGES["default"]["BACKEND"])
    return isinstance(backend, type) and issubclass(backend, FileSystemStorage)


def shared_state_problems() -> list[tuple[str, str]]:
    """(check id, problem) for each piece of state a second host needs that this
    configuration keeps in one process or on one disk; none when `CUTOUT_HOSTS` is 1."""
    if settings.CUTOUT_HOSTS <= 1:
        return []
    problems = []
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            (
                "cutout.E201",
                "The database is SQLite, a local file (DATABASE_URL is not set): accounts, the "
                "ledger, sessions, Idempotency-Key claims and the batch queue would be this "
                "host's alone.",
            )
        )
    if _local_cache():
        problems.append(
            (
                "cutout.E202",
                f"The cache is {settings.CACHES['default']['BACKEND']} (REDIS_URL is not set): "
                "rate, concurrency and free-work limits, log-in throttles, try-out counts and "
                "the upstream's health would be counted per process.",
            )
        )
    if _local_storage():
        problems.append(
            (
                "cutout.E203",
                "Files are stored on this host's disk (AWS_STORAGE_BUCKET_NAME is not set): "
                "another host cannot read uploads, batch inputs and results stored here.",
            )
        )
    engine = settings.SESSION_ENGINE
    if engine == "django.contrib.sessions.backends.file" or (
        engine in SESSIONS_IN_CACHE and _local_cache()
    ):
        problems.append(
            (
                "cutout.E204",
                f"Sessions ({engine}) live on this host: a visitor logged in here would be "
                "logged out on another.",
            )
        )
    if settings.SECRET_KEY_FROM_DATA_DIR:
        problems.append(
            (
                "cutout.E205",
                "DJANGO_SECRET_KEY is not set, so each host signs with its own key from its data "
                "folder: sessions, sign-up links and device cookies of one host fail on another.",
            )
        )
    return problems


@checks.register()
def check_shared_state(app_configs: list | None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(problem, hint=HOSTS_HINT, id=check_id)
        for check_id, problem in shared_state_problems()
    ]


def refuse_local_state() -> None:
    """Raise ImproperlyConfigured (gunicorn's worker then fails to boot) when several hosts are
    declared and some state would stay local."""
    problems = shared_state_problems()
    if problems:
        listed = " ".join(f"[{check_id}] {problem}" for check_id, problem in problems)
        raise ImproperlyConfigured(f"CUTOUT_HOSTS={settings.CUTOUT_HOSTS}: {listed} {HOSTS_HINT}")
