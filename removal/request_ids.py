"""Request ids: 32 hex characters on every answer (`X-Request-Id`) and in the logs.

The first 14 hex characters are a 53-bit number, so that the same id can be written where a
JSON integer must stay exact (Baidu's `log_id`, below 2^53): 41 bits of milliseconds since
2024 and 12 bits of a per-process sequence that starts at a random point. Two calls of one
process never share it (unless one process serves more than 4,096 calls in a millisecond);
calls of two processes share it only in the same millisecond with the same 12 bits.
"""

import itertools
import secrets
import threading
import time

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_SEQUENCE_BITS = 12
_sequence = itertools.count(secrets.randbelow(1 << _SEQUENCE_BITS))
_lock = threading.Lock()


def new_request_id() -> str:
    with _lock:
        number = next(_sequence) % (1 << _SEQUENCE_BITS)
    millis = (time.time_ns() // 1_000_000 - _EPOCH_MS) % (1 << 41)
    return f"{millis << _SEQUENCE_BITS | number:014x}{secrets.token_hex(9)}"


def log_id(request_id: str) -> int:
    """The request id's 53-bit number (0 for an id not made here)."""
    try:
        return int(request_id[:14], 16) & ((1 << 53) - 1)
    except ValueError:
        return 0
