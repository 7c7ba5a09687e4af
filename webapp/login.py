"""Log-in throttling that a stranger cannot turn against an account's owner.

OWASP's device-cookie scheme ("Slow Down Online Guessing Attacks with Device Cookies"):

- A successful log-in gives the browser a device cookie: signed with the secret key, naming
  the account and a random nonce, valid for a year.
- An attempt from a browser whose valid device cookie names the account being logged into (a
  trusted device) is limited per cookie: its failures lock out that cookie, no one else.
- Any other attempt (an untrusted client) is limited per address, and per account: failures
  for an account from anywhere lock out untrusted clients for that account, never the
  browsers its owner has logged in with before.

Each limit is CUTOUT_LOGIN_FAILURE_LIMIT failures per CUTOUT_LOGIN_FAILURE_WINDOW_S, counted
in the cache (removal/limits.py) so that every worker shares them. Both log-in pages, the
site's and the admin's, use it (webapp/forms.py).
"""

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.http import HttpRequest, HttpResponse

from removal import limits

COOKIE_NAME = "cutout_device"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
_SALT = "webapp.login.device"


def _digest(text: str) -> str:
    """Cache keys of bounded length whatever was typed into the form."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def normalise(email: str) -> str:
    return email.strip().lower()


def device_cookie(email: str) -> str:
    """A new device cookie's value for the account `email`."""
    return signing.dumps(
        {"email": normalise(email), "nonce": secrets.token_urlsafe(16)}, salt=_SALT
    )


def trusted_device(cookies: dict, email: str) -> str | None:
    """The nonce of a valid device cookie for `email` among `cookies`, else None."""
    value = cookies.get(COOKIE_NAME)
    if not value:
        return None
    try:
        data = signing.loads(value, salt=_SALT, max_age=COOKIE_MAX_AGE_S)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("email") != normalise(email):
        return None
    return str(data.get("nonce", "")) or None


def attempt_keys(request: HttpRequest | None, email: str) -> list[str]:
    """The counters a log-in attempt for `email` is checked against and charged to."""
    cookies = request.COOKIES if request is not None else {}
    nonce = trusted_device(cookies, email)
    if nonce:
        return [f"login:device:{_digest(nonce)}"]
    address = (
        limits.client_block(limits.client_address(request.META))
        if request is not None
        else "unknown"
    )
    return [f"login:account:{_digest(normalise(email))}", f"login:address:{_digest(address)}"]


def is_locked_out(keys: list[str]) -> bool:
    window = settings.CUTOUT_LOGIN_FAILURE_WINDOW_S
    return any(limits.count(key, window) >= settings.CUTOUT_LOGIN_FAILURE_LIMIT for key in keys)


def record_failure(keys: list[str]) -> None:
    for key in keys:
        limits.hit(key, settings.CUTOUT_LOGIN_FAILURE_WINDOW_S)


def remember_device(
    sender: type, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    """`user_logged_in` receiver: the response to this request carries a new device cookie."""
    if request is not None:
        request.new_device_cookie = device_cookie(user.email)


class DeviceCookieMiddleware:
    """Sets the device cookie on the response to a request that logged someone in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        value = getattr(request, "new_device_cookie", None)
        if value:
            response.set_cookie(
                COOKIE_NAME,
                value,
                max_age=COOKIE_MAX_AGE_S,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
