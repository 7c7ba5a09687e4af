"""The record of every call: what was asked, what it cost, how it ended (`CallRecord`).

A view makes a `Call` when a request reaches it (removal/api/recording.py does it for the API
views and the website's calls); the service and the charging path fill in the work's outcome
(test or not, credits, sizes, engine); `finish()` writes the row once the answer is known, for
answers of every kind. No image data is kept. A 401 or 429 past the first of an account in a
minute only adds one to that first row's `repeats`.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from removal.engine.decode import ImageInfo
from removal.engine.types import RemovalResult
from removal.models import ApiKey, CallRecord

COUNTED_STATUSES = frozenset({401, 429})
PURGE_BATCH = 5000


@dataclass
class Call:
    """One call in flight; its fields become the record's."""

    channel: str
    wire_format: str
    endpoint: str
    request_id: str = ""
    started: float = field(default_factory=time.monotonic)
    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None
    test: bool = False
    replay: bool = False
    credits: Decimal = Decimal(0)
    input_bytes: int = 0
    input_pixels: int = 0
    output_bytes: int = 0
    output_pixels: int = 0
    engine: str = ""

    def saw_input(self, data: bytes, info: ImageInfo) -> None:
        self.input_bytes = len(data)
        self.input_pixels = info.pixels

    def saw_result(self, result: RemovalResult) -> None:
        self.output_bytes = len(result.body)
        self.output_pixels = result.result_size[0] * result.result_size[1]
        self.engine = result.engine


def finish(call: Call, status: int, error_code: int | None = None) -> CallRecord | None:
    """Write the call's record (None when no account is known, or a counted repeat)."""
    if call.user is None:
        return None
    now = timezone.now()
    if status in COUNTED_STATUSES and _counted_as_repeat(call.user, status, now):
        return None
    return CallRecord.objects.create(
        created_at=now,
        user=call.user,
        api_key=call.api_key,
        channel=call.channel,
        wire_format=call.wire_format,
        endpoint=call.endpoint[:60],
        test=call.test,
        replay=call.replay,
        status=status,
        error_code=error_code,
        credits=call.credits,
        input_bytes=call.input_bytes,
        input_pixels=call.input_pixels,
        output_bytes=call.output_bytes,
        output_pixels=call.output_pixels,
        engine=call.engine,
        duration_ms=min(int((time.monotonic() - call.started) * 1000), 2**31 - 1),
        request_id=call.request_id,
    )


def _counted_as_repeat(user: AbstractBaseUser, status: int, now: datetime) -> bool:
    """True when this minute already has the account's record of `status`, now counted once
    more; False for the first, which the caller records."""
    minute = now.replace(second=0, microsecond=0)
    if cache.add(f"calls:first:{user.pk}:{status}:{minute:%Y%m%d%H%M}", 1, timeout=120):
        return False
    counted = (
        CallRecord.objects.filter(user=user, status=status, created_at__gte=minute)
        .order_by("pk")
        .values_list("pk", flat=True)[:1]
    )
    return CallRecord.objects.filter(pk__in=list(counted)).update(repeats=F("repeats") + 1) == 1


def retention() -> timedelta:
    return timedelta(days=settings.CUTOUT_CALL_RECORD_RETENTION_DAYS)


def purge_expired(now: datetime | None = None) -> int:
    """Delete the records past their retention, a batch at a time so that no one statement
    holds the table for long; returns how many went."""
    cutoff = (now or timezone.now()) - retention()
    deleted = 0
    while True:
        batch = list(
            CallRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :PURGE_BATCH
            ]
        )
        if not batch:
            return deleted
        deleted += CallRecord.objects.filter(pk__in=batch).delete()[0]
