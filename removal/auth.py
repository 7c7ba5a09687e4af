"""DRF authentication with API keys: HTTP Basic (Pixian) and `X-Api-Key: ID:SECRET` (remove.bg).

Both raise `RemovalError`; the API's exception handler renders it in the view's wire format.
Failed attempts (malformed or wrong) are counted per client address; past the limit every
attempt from that address gets a 429 until the window closes.
"""

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from removal import errors, keys, limits
from removal.errors import RemovalError
from removal.models import ApiKey

FAILURE_WINDOW_S = 60
T = TypeVar("T")


def split_pair(pair: str) -> tuple[str, str]:
    """Split 'ID:SECRET'; raises 4001 for a malformed pair."""
    key_id, sep, secret = pair.partition(":")
    if not sep or not key_id or not secret:
        raise RemovalError(
            errors.NO_CREDENTIALS, "Credentials must be an API id and a secret separated by ':'."
        )
    return key_id, secret


def counted_failures(request: Request, attempt: Callable[[], T]) -> T:
    """Run `attempt()`, counting each RemovalError it raises against the caller's address;
    past CUTOUT_API_AUTH_FAILURE_LIMIT in the window, refuse (4290) without trying."""
    key = f"apiauth:{limits.client_block(limits.client_address(request.META))}"
    if limits.count(key, FAILURE_WINDOW_S) >= settings.CUTOUT_API_AUTH_FAILURE_LIMIT:
        raise RemovalError(
            errors.RATE_LIMITED,
            "Too many failed authentications from your address; retry later.",
            retry_after=limits.retry_after(FAILURE_WINDOW_S),
        )
    try:
        return attempt()
    except RemovalError:
        limits.hit(key, FAILURE_WINDOW_S)
        raise


def verify_pair(
    request: Request, parse: Callable[[], tuple[str, str]]
) -> tuple[AbstractBaseUser, ApiKey]:
    """Run `parse()` -> (id, secret) and verify it; returns DRF's (user, key).

    Every failure inside is counted against the caller's address.
    """

    def attempt() -> ApiKey:
        key_id, secret = parse()
        api_key = keys.verify(key_id, secret)
        if api_key is None:
            # The call record goes to the account whose key id was tried (removal/api/recording.py).
            request._request.failed_api_key = keys.find(key_id)
            raise RemovalError(errors.BAD_CREDENTIALS)
        return api_key

    api_key = counted_failures(request, attempt)
    return api_key.user, api_key


def _parse_basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise RemovalError(
            errors.NO_CREDENTIALS,
            "The Authorization header must be HTTP Basic: 'Basic base64(id:secret)'.",
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RemovalError(
            errors.NO_CREDENTIALS, "The Basic credentials are not valid base64 of 'id:secret'."
        ) from None
    return split_pair(decoded)


def _parse_x_api_key(raw: str) -> tuple[str, str]:
    try:
        # WSGI hands headers over as latin-1; anything outside ASCII is not one of our keys.
        value = raw.encode("latin-1").decode("ascii").strip()
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise RemovalError(
            errors.NO_CREDENTIALS, "X-Api-Key must be 'API_ID:API_SECRET' in ASCII."
        ) from None
    return split_pair(value)


class BasicApiKeyAuthentication(BaseAuthentication):
    """HTTP Basic with the API id as user name and the secret as password."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        return verify_pair(request, lambda: _parse_basic(header))

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="Cutout"'


class HeaderApiKeyAuthentication(BaseAuthentication):
    """remove.bg's `X-Api-Key` header, holding 'ID:SECRET'."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiKey] | None:
        raw = request.META.get("HTTP_X_API_KEY")
        if raw is None:
            return None
        return verify_pair(request, lambda: _parse_x_api_key(raw))
