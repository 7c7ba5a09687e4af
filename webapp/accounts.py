"""Sign-up by e-mail confirmation, so that no answer tells who has an account.

The form asks only for an address and always answers "check your inbox". An unknown address
is mailed a link to choose a password (the account is created then); a known one is mailed a
note that it has an account, with links to log in and to reset the password. Either way only
the mailbox's owner can go on. The link is signed (no table), expires with Django's password
reset links (`PASSWORD_RESET_TIMEOUT`) and is spent once the account exists.

Mails per recipient are capped, silently (the answer stays the same), so that the form cannot
be used to flood someone's inbox; the form itself is limited per client address.
"""

import logging

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError
from django.template.loader import render_to_string
from django.urls import reverse

from removal import limits
from webapp.login import normalise
from webapp.models import User

logger = logging.getLogger(__name__)

_SALT = "webapp.accounts.signup"
HOUR_S = 3600
MAILS_PER_RECIPIENT_PER_HOUR = 3
SIGNUPS_PER_ADDRESS_PER_HOUR = 20


class AccountExistsError(Exception):
    """The address has an account already."""


def signup_limited(address: str) -> bool:
    """Counts one sign-up from the client `address`; True once it is over the hourly limit."""
    return limits.hit(f"signup:address:{address}", HOUR_S) > SIGNUPS_PER_ADDRESS_PER_HOUR


def request_signup(email: str, base_url: str) -> None:
    """Mail `email` the next step of a sign-up: a link to choose a password, or a note that the
    address has an account. `base_url` is the site's root URL, for the links."""
    email = normalise(email)
    if limits.hit(f"signup:mail:{email}", HOUR_S) > MAILS_PER_RECIPIENT_PER_HOUR:
        logger.warning("sign-up: no more mails to one recipient this hour")
        return
    root = base_url.rstrip("/")
    context = {"email": email, "days": settings.PASSWORD_RESET_TIMEOUT // (24 * 3600)}
    if has_account(email):
        template = "registration/signup_exists_email.txt"
        context["login_url"] = root + reverse("login")
        context["reset_url"] = root + reverse("password_reset")
    else:
        template = "registration/signup_email.txt"
        token = signing.dumps(email, salt=_SALT)
        context["confirm_url"] = root + reverse("signup_confirm", args=[token])
    send_mail(
        "Your Cutout sign-up",
        render_to_string(template, context),
        None,
        [email],
    )


def confirmed_email(token: str) -> str | None:
    """The address a sign-up link was mailed to, or None for a forged or expired link."""
    try:
        email = signing.loads(token, salt=_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.BadSignature:
        return None
    return email if isinstance(email, str) else None


def has_account(email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def create_account(email: str, password: str) -> User:
    """The account for a confirmed address. Raises AccountExistsError if it has one."""
    try:
        return User.objects.create_user(email, password)
    except IntegrityError:
        raise AccountExistsError(email) from None
