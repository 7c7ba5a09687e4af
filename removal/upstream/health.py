"""The upstream's health for the operator, kept in the site's shared cache (`CACHES["shared"]`:
Redis with `REDIS_URL`, else files in the data folder) so that every process (and every host,
with `REDIS_URL`) reads the same: the last success, the last error (Cutout's
code and the upstream's status, code and message, with its time), the current `429` backoff
and the upstream account's remaining credits (read at most once a minute).

Written by the upstream engine and client after each call; read by the staff page
(`/staff/upstream`) and `manage.py upstream_status`. Failing to read the upstream's account is
shown, never raised.
"""

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.utils import timezone

from removal import errors
from removal.errors import RemovalError

HEALTH_KEY = "upstream:health"
ACCOUNT_KEY = "upstream:account"
ACCOUNT_TTL_S = 60
# Long enough to outlive any quiet night; the state is rewritten on every call.
HEALTH_TTL_S = 30 * 24 * 3600

_noted = threading.local()
UPSTREAM_CODES = (errors.UPSTREAM_FAILED, errors.UPSTREAM_UNAVAILABLE, errors.UPSTREAM_TIMEOUT)


def _cache() -> BaseCache:
    return caches["shared"]


def note_answer(status: int, error: tuple[int, str] | None) -> None:
    """The upstream's own status and error JSON behind the error this thread raises next."""
    _noted.answer = (status, error)


def note_backoff(wait_s: float) -> None:
    _update({"backoff_s": round(wait_s, 2)})


def record_success() -> None:
    _update({"last_success": timezone.now().isoformat(), "backoff_s": 0})


def record_error(exc: RemovalError) -> None:
    status, error = getattr(_noted, "answer", (None, None))
    _noted.answer = (None, None)
    code, message = error if error else (None, "")
    _update(
        {
            "last_error": {
                "at": timezone.now().isoformat(),
                "cutout_code": exc.code,
                "upstream_status": status,
                "upstream_code": code,
                "message": message or exc.message,
            }
        }
    )


def _update(values: dict[str, Any]) -> None:
    # Read-modify-write without a lock: two calls racing may drop one's line, and the next
    # call writes it again. The operator's view needs the latest state, not every event.
    state = _cache().get(HEALTH_KEY) or {}
    state.update(values)
    _cache().set(HEALTH_KEY, state, HEALTH_TTL_S)


@dataclass(frozen=True)
class Health:
    last_success: datetime | None
    last_error: dict[str, Any] | None
    backoff_s: float
    credits: str | None
    account_error: str


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def account_credits() -> tuple[str | None, str]:
    """(remaining upstream credits, why they could not be read), cached for a minute."""
    from removal.upstream import client

    cached = _cache().get(ACCOUNT_KEY)
    if cached is not None:
        return cached
    try:
        account = client.account()
    except RemovalError as exc:
        record_error(exc)
        found: tuple[str | None, str] = (None, f"{exc.code}: {exc.message}")
    else:
        found = (str(account.credits), "")
    _cache().set(ACCOUNT_KEY, found, ACCOUNT_TTL_S)
    return found


def current() -> Health:
    """What the operator sees; reads the upstream's account when the cached figure is older
    than a minute."""
    credits, account_error = account_credits()
    state = _cache().get(HEALTH_KEY) or {}
    last_error = state.get("last_error")
    if last_error:
        last_error = {**last_error, "at": _when(last_error["at"])}
    return Health(
        last_success=_when(state.get("last_success")),
        last_error=last_error,
        backoff_s=float(state.get("backoff_s") or 0),
        credits=credits,
        account_error=account_error,
    )


@dataclass(frozen=True)
class RecentCalls:
    """Removal calls in the last hour, from the call records, and those the upstream failed."""

    calls: int
    upstream_failures: int


def recent_calls() -> RecentCalls:
    from removal.models import CallRecord

    recent = CallRecord.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1))
    return RecentCalls(
        calls=recent.count(),
        upstream_failures=recent.filter(error_code__in=UPSTREAM_CODES).count(),
    )


def lines(now: Health, recent: RecentCalls) -> list[tuple[str, str]]:
    """The operator's view as (label, value) rows: the staff page and the command print these."""
    error = now.last_error
    if error:
        upstream = " ".join(
            str(part) for part in (error["upstream_status"], error["upstream_code"]) if part
        )
        shown = f"{error['at']:%Y-%m-%d %H:%M:%S}Z: {error['cutout_code']}"
        shown += f" (upstream {upstream})" if upstream else ""
        shown += f" {error['message']}"
    else:
        shown = "none"
    return [
        ("last success", f"{now.last_success:%Y-%m-%d %H:%M:%S}Z" if now.last_success else "never"),
        ("last error", shown),
        ("current 429 backoff", f"{now.backoff_s:g} s"),
        (
            "upstream credits",
            now.credits if now.credits is not None else f"unknown ({now.account_error})",
        ),
        ("calls in the last hour", str(recent.calls)),
        ("upstream failures in the last hour", str(recent.upstream_failures)),
    ]
