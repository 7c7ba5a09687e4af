"""Per-account rate and concurrency limits (the spec's step 2, after authentication).

Both are counted in the Django cache, so every worker process, and every host, that shares
the cache (Redis when `REDIS_URL` is set) shares the limits. With the local-memory default they
hold per process only.

- Rate: a fixed one-minute window counter per account (`hit`, an atomic incr); the same
  counters throttle failed log-ins and failed API authentications per address.
- Concurrency: `limit` numbered slot keys per account. A request takes a free slot with
  `cache.add` (atomic: Redis `SET NX`), gives it back when it ends, even by an exception, and
  every slot also carries a time-out, the request's own (`CUTOUT_REQUEST_TIMEOUT_S`, after
  which the proxy has given up on it), so a slot held by a killed worker frees itself then
  instead of leaking. A plain incr/decr counter could do neither: a crash leaks its increment
  forever, and a TTL on a shared counter would reset it under requests that are still running.
- Free work (test mode, try-outs): `free_work()` holds one of the site's
  `CUTOUT_FREE_CONCURRENCY` slots (the same slot keys, for the whole site), and
  `spend_free_pixels()` counts an account's (or a visitor's address's) megapixels per minute.
- Addresses: `client_address()` reads `X-Forwarded-For` only as far as
  `CUTOUT_TRUSTED_PROXY_HOPS` trusted proxies; `client_block()` folds IPv6 to its /64, the
  block one subscriber gets, so that counting per address means something for IPv6.
"""

import ipaddress
import math
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
CONCURRENCY_RETRY_AFTER_S = 1
# A slot outlives its request's time-out by this much, so a live request never loses it.
SLOT_TTL_MARGIN_S = 5
FREE_WORK_ACCOUNT = "site:free-work"
UPSTREAM_ACCOUNT = "site:upstream"


# --- fixed-window counters --------------------------------------------------------------------


def _window_key(key: str, window_s: int) -> tuple[str, int]:
    now = int(time.time())
    start = now - now % window_s
    return f"rl:{key}:{start}", start + window_s - now


def count(key: str, window_s: int) -> int:
    """How many hits `key` has in the current window."""
    cache_key, _ = _window_key(key, window_s)
    return int(cache.get(cache_key, 0))


def hit(key: str, window_s: int, amount: int = 1) -> int:
    """Record `amount` hits and return the window's new count (atomic on Redis and local
    memory)."""
    cache_key, _ = _window_key(key, window_s)
    cache.add(cache_key, 0, timeout=window_s + 1)
    try:
        return cache.incr(cache_key, amount)
    except ValueError:
        # The key expired between add() and incr(): this hit opens a new window.
        cache.set(cache_key, amount, timeout=window_s + 1)
        return amount


def retry_after(window_s: int) -> int:
    """Seconds until the current window closes (at least 1)."""
    return max(1, _window_key("", window_s)[1])


def client_address(meta: dict) -> str:
    """The caller's address: the socket's peer, or with `CUTOUT_TRUSTED_PROXY_HOPS` = n the
    address the n-th trusted proxy saw. Each proxy appends its peer to `X-Forwarded-For`, so
    only the last n entries are the proxies' word; anything before them is the client's own
    claim and is never read."""
    hops = settings.CUTOUT_TRUSTED_PROXY_HOPS
    chain = [meta.get("REMOTE_ADDR", "") or "unknown"]
    if hops > 0:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
        entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
        chain = entries + chain
    return chain[max(0, len(chain) - 1 - hops)]


def client_block(address: str) -> str:
    """What limits count for an address: an IPv4 address itself, an IPv6 address's /64
    ("2001:db8:1:2::/64"); anything unparsable as given."""
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


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


def slot_ttl_s() -> int:
    """How long a slot lives unless given back: its request's time-out and a margin."""
    return settings.CUTOUT_REQUEST_TIMEOUT_S + SLOT_TTL_MARGIN_S


def acquire_slot(
    account: str, limit: int, ttl_s: int | None = None, *, code: int = errors.RATE_LIMITED
) -> tuple[str, str]:
    """Take one of `account`'s `limit` in-flight slots; returns (key, token) for release_slot.

    Raises `code` (4290) when all are taken.
    """
    keys = _slot_keys(account, limit)
    taken = cache.get_many(keys)
    free = [key for key in keys if key not in taken]
    # Start at a random free slot so that concurrent callers rarely race for the same key.
    random.shuffle(free)
    token = uuid.uuid4().hex
    for key in free:
        if cache.add(key, token, timeout=ttl_s or slot_ttl_s()):
            return key, token
    if code != errors.RATE_LIMITED:
        raise RemovalError(code, retry_after=CONCURRENCY_RETRY_AFTER_S)
    raise RemovalError(
        code,
        f"Concurrency limit reached: at most {limit} requests at a time; retry later.",
        retry_after=CONCURRENCY_RETRY_AFTER_S,
    )


def release_slot(key: str, token: str) -> None:
    # Only our own token: after a (very late) expiry the key may belong to another request.
    if cache.get(key) == token:
        cache.delete(key)


@contextmanager
def held_slot(account: str, limit: int, *, code: int = errors.RATE_LIMITED) -> Iterator[None]:
    """One of `account`'s `limit` slots (acquire_slot) for the duration of the block."""
    key, token = acquire_slot(account, limit, code=code)
    try:
        yield
    finally:
        release_slot(key, token)


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
    with held_slot(account, limit):
        yield


@contextmanager
def free_work() -> Iterator[None]:
    """Hold one of the site's CUTOUT_FREE_CONCURRENCY free-work slots (shared by every account
    and visitor) for the block; 4291 when all are taken. Taken before any fetch or decoding."""
    with held_slot(
        FREE_WORK_ACCOUNT, max(1, settings.CUTOUT_FREE_CONCURRENCY), code=errors.FREE_WORK_BUSY
    ):
        yield


def free_work_in_flight() -> int:
    return in_flight_count(FREE_WORK_ACCOUNT, max(1, settings.CUTOUT_FREE_CONCURRENCY))


def spend_free_pixels(account: str, pixels: int) -> None:
    """Count `pixels` of free work against `account` (a user, or a visitor's `client_block`);
    4292 with Retry-After when that passes CUTOUT_FREE_MEGAPIXELS_PER_MINUTE (0: no budget).
    Checked from the image's header, before it is decoded."""
    budget = settings.CUTOUT_FREE_MEGAPIXELS_PER_MINUTE * 1_000_000
    if budget <= 0:
        return
    key = f"free-pixels:{account}"
    if hit(key, RATE_WINDOW_S, pixels) > budget:
        raise RemovalError(
            errors.FREE_PIXELS_SPENT,
            f"Free (test-mode) work is limited to {settings.CUTOUT_FREE_MEGAPIXELS_PER_MINUTE} "
            f"megapixels per minute; retry later or send paid calls.",
            retry_after=retry_after(RATE_WINDOW_S),
        )


def upstream_share() -> int:
    """How many of the site's upstream slots one account may hold at once."""
    cap = max(1, settings.CUTOUT_UPSTREAM_CONCURRENCY)
    return max(1, min(cap, math.ceil(cap * settings.CUTOUT_UPSTREAM_ACCOUNT_SHARE)))


@contextmanager
def upstream_call(account: str) -> Iterator[None]:
    """Reseller mode: hold one of `account`'s share of the upstream slots (4290 when its share
    is in flight) and one of the site's `CUTOUT_UPSTREAM_CONCURRENCY` (5031 when all are), for
    one upstream call, so that no customer can take the operator's whole upstream."""
    site_cap = max(1, settings.CUTOUT_UPSTREAM_CONCURRENCY)
    with (
        held_slot(f"upstream:{account}", upstream_share()),
        held_slot(UPSTREAM_ACCOUNT, site_cap, code=errors.ENGINE_BUSY),
    ):
        yield


def upstream_in_flight() -> int:
    return in_flight_count(UPSTREAM_ACCOUNT, max(1, settings.CUTOUT_UPSTREAM_CONCURRENCY))


@contextmanager
def limited(account: str) -> Iterator[None]:
    """Both limits in the spec's order: count the request, then hold a slot while it runs."""
    check_rate(account)
    with in_flight(account):
        yield
