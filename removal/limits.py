"""Per-account rate and concurrency limits (the spec's step 2, after authentication).

Both are counted in the Django cache, so every worker process, and every host, that shares
the cache (Redis when `REDIS_URL` is set) shares the limits. With the local-memory default they
hold per process only.

- Rate: a fixed one-minute window counter per account (`hit`, an atomic incr); the same
  counters throttle failed log-ins and failed API authentications per address.
- Concurrency: `limit` numbered slot keys per account. A request takes a free slot with
  `cache.add` (atomic: Redis `SET NX`), gives it back when it ends, even by an exception, and
  every slot also carries a time-out longer than gunicorn's worker time-out, so a slot held
  by a killed worker frees itself instead of leaking. A plain incr/decr counter could do
  neither: a crash leaks its increment forever, and a TTL on a shared counter would reset
  it under requests that are still running.
"""

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from removal import errors
from removal.errors import RemovalError

RATE_WINDOW_S = 60
# Longer than gunicorn's worker time-out (gunicorn.conf.py): a live request keeps its slot.
SLOT_TTL_S = 300
CONCURRENCY_RETRY_AFTER_S = 1


# --- fixed-window counters --------------------------------------------------------------------


def _window_key(key: str, window_s: int) -> tuple[str, int]:
    now = int(time.time())
    start = now - now % window_s
    return f"rl:{key}:{start}", start + window_s - now


def count(key: str, window_s: int) -> int:
    """How many hits `key` has in the current window."""
    cache_key, _ = _window_key(key, window_s)
    return int(cache.get(cache_key, 0))


def hit(key: str, window_s: int) -> int:
    """Record one hit and return the window's new count (atomic on Redis and local memory)."""
    cache_key, _ = _window_key(key, window_s)
    cache.add(cache_key, 0, timeout=window_s + 1)
    try:
        return cache.incr(cache_key)
    except ValueError:
        # The key expired between add() and incr(): this hit opens a new window.
        cache.set(cache_key, 1, timeout=window_s + 1)
        return 1


def retry_after(window_s: int) -> int:
    """Seconds until the current window closes (at least 1)."""
    return max(1, _window_key("", window_s)[1])


def client_address(meta: dict) -> str:
    """The caller's address; with CUTOUT_HTTPS the proxy's X-Forwarded-For is trusted."""
    if settings.CUTOUT_HTTPS:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return meta.get("REMOTE_ADDR", "") or "unknown"


# --- the API's per-account limits -------------------------------------------------------------


def check_rate(account: str, *, limit: int | None = None, window_s: int = RATE_WINDOW_S) -> None:
    """Count one request for `account`; raise 4290 when the window's allowance is spent.

    `limit` defaults to CUTOUT_RATE_LIMIT_PER_MINUTE; 0 turns the limit off.
    """
    if limit is None:
        limit = settings.CUTOUT_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    if hit(f"api-rate:{account}", window_s) > limit:
        raise RemovalError(
            errors.RATE_LIMITED,
            f"Rate limit reached: {limit} requests per {window_s} s; retry later.",
            retry_after=retry_after(window_s),
        )


@dataclass(frozen=True)
class RateState:
    """The account's rate window as remove.bg's `X-RateLimit-*` headers tell it."""

    limit: int
    remaining: int
    reset: int  # Unix time when the window closes


def rate_state(account: str, *, window_s: int = RATE_WINDOW_S) -> RateState | None:
    """Where `account` stands in the current window (None when the limit is off)."""
    limit = settings.CUTOUT_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return None
    used = count(f"api-rate:{account}", window_s)
    return RateState(
        limit=limit,
        remaining=max(0, limit - used),
        reset=int(time.time()) + retry_after(window_s),
    )


def _slot_keys(account: str, limit: int) -> list[str]:
    return [f"api-slot:{account}:{index}" for index in range(limit)]


def acquire_slot(account: str, limit: int, ttl_s: int = SLOT_TTL_S) -> tuple[str, str]:
    """Take one of `account`'s `limit` in-flight slots; returns (key, token) for release_slot.

    Raises 4290 when all are taken.
    """
    keys = _slot_keys(account, limit)
    taken = cache.get_many(keys)
    free = [key for key in keys if key not in taken]
    # Start at a random free slot so that concurrent callers rarely race for the same key.
    random.shuffle(free)
    token = uuid.uuid4().hex
    for key in free:
        if cache.add(key, token, timeout=ttl_s):
            return key, token
    raise RemovalError(
        errors.RATE_LIMITED,
        f"Concurrency limit reached: at most {limit} requests at a time; retry later.",
        retry_after=CONCURRENCY_RETRY_AFTER_S,
    )


def release_slot(key: str, token: str) -> None:
    # Only our own token: after a (very late) expiry the key may belong to another request.
    if cache.get(key) == token:
        cache.delete(key)


def in_flight_count(account: str, limit: int) -> int:
    return len(cache.get_many(_slot_keys(account, limit)))


@contextmanager
def in_flight(account: str, *, limit: int | None = None) -> Iterator[None]:
    """Hold one of `account`'s concurrency slots for the duration of the block.

    `limit` defaults to CUTOUT_CONCURRENCY_LIMIT; 0 turns the limit off.
    """
    if limit is None:
        limit = settings.CUTOUT_CONCURRENCY_LIMIT
    if limit <= 0:
        yield
        return
    key, token = acquire_slot(account, limit)
    try:
        yield
    finally:
        release_slot(key, token)


@contextmanager
def limited(account: str) -> Iterator[None]:
    """Both limits in the spec's order: count the request, then hold a slot while it runs."""
    check_rate(account)
    with in_flight(account):
        yield
