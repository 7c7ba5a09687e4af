"""Start-up checks of the mail set-up: a system check (`manage.py check`, runserver, migrate)
and, since gunicorn runs no checks, a log line when the app loads (webapp/apps.py)."""

import logging
from typing import Any

from django.conf import settings
from django.core import checks

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
