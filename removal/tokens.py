"""Baidu-style access tokens (spec/baidu-segment.md, "Access token"): issued for an API key
from `client_credentials`, valid 30 days, stored only as an HMAC (removal/keys.py), dead as
soon as their key is revoked. A key has at most `MAX_LIVE_PER_KEY` tokens: issuing one more
deletes the oldest, so a client that fetches a token per call cannot grow the table forever.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from removal import errors, keys
from removal.errors import RemovalError
from removal.models import AccessToken, ApiKey

LIFETIME = timedelta(days=30)
MAX_LIVE_PER_KEY = 100
# Baidu's SDKs check that `scope` lists brain_all_scope, else they sign requests another way.
SCOPE = "public brain_all_scope"
TOKEN_PREFIX = "24."


@dataclass(frozen=True)
class Issued:
    """A new token as the client sees it, once; only its HMAC is kept."""

    token: str
    expires_in: int
    refresh_token: str
    session_key: str
    session_secret: str
    scope: str = SCOPE


def issue(api_key: ApiKey) -> Issued:
    """A new token for `api_key`; past `MAX_LIVE_PER_KEY` the key's oldest tokens go."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # The key's row lock orders concurrent issues, so the cap holds under races too.
        ApiKey.objects.select_for_update().filter(pk=api_key.pk).first()
        AccessToken.objects.create(
            api_key=api_key,
            token_hmac=keys.hash_secret(token),
            created_at=now,
            expires_at=now + LIFETIME,
        )
        stale = AccessToken.objects.filter(api_key=api_key).order_by("-created_at", "-pk")
        stale_ids = list(stale.values_list("pk", flat=True)[MAX_LIVE_PER_KEY:])
        if stale_ids:
            AccessToken.objects.filter(pk__in=stale_ids).delete()
    # The refresh token and session pair exist only because clients read them: the refresh
    # grant is refused (unsupported_grant_type) and nothing is signed with the session pair.
    return Issued(
        token=token,
        expires_in=int(LIFETIME.total_seconds()),
        refresh_token=TOKEN_PREFIX + secrets.token_urlsafe(32),
        session_key=secrets.token_urlsafe(24),
        session_secret=secrets.token_hex(16),
    )


def verify(token: str) -> ApiKey:
    """The live key of `token`; raises 4003 (unknown, or its key revoked) or 4004 (expired)."""
    found = (
        AccessToken.objects.select_related("api_key__user")
        .filter(token_hmac=keys.hash_secret(token))
        .first()
    )
    if found is None or not found.api_key.is_active or not found.api_key.user.is_active:
        raise RemovalError(errors.BAD_ACCESS_TOKEN)
    if found.expires_at <= timezone.now():
        raise RemovalError(errors.ACCESS_TOKEN_EXPIRED)
    return found.api_key


def purge_expired() -> int:
    """Delete expired tokens; returns how many."""
    deleted, _ = AccessToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
