"""Fixed-window counters in the cache, shared by every worker that shares the cache."""

import time

from django.core.cache import cache


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
    from django.conf import settings

    if settings.CUTOUT_HTTPS:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return meta.get("REMOTE_ADDR", "") or "unknown"
