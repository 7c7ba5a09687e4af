"""remove.bg's `POST /v1.0/improve`: images customers send us to learn from.

Bounded: at most 12 MB each (the image's header is checked like an input's), at most
DAILY_LIMIT per account per UTC day (then 429 until midnight), kept
CUTOUT_IMPROVE_RETENTION_DAYS. Nothing is charged.
"""

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from removal import errors, services
from removal.engine import decode
from removal.errors import RemovalError
from removal.inputs import ImageInput
from removal.models import Improvement
from webapp.models import User

MAX_BYTES = 12 * 1024 * 1024
DAILY_LIMIT = 100
BOUNDS = decode.ImageBounds(max_bytes=MAX_BYTES)
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _check_quota(user: AbstractBaseUser, now: datetime) -> None:
    today = Improvement.objects.filter(user=user, created_at__gte=_day_start(now)).count()
    if today >= DAILY_LIMIT:
        retry = _day_start(now) + timedelta(days=1) - now
        raise RemovalError(
            errors.RATE_LIMITED,
            f"At most {DAILY_LIMIT} images a day can be sent to /v1.0/improve; retry tomorrow.",
            retry_after=max(1, int(retry.total_seconds())),
        )


def submit(
    user: AbstractBaseUser, image: ImageInput, filename: str = "", tag: str = ""
) -> Improvement:
    """Store `image` (downloaded when it is a URL) for `user`. Raises RemovalError: the
    input's 1xxx/3xxx codes, and 4290 past DAILY_LIMIT today."""
    data = services.image_bytes(image)
    info = decode.probe(data, BOUNDS)
    now = timezone.now()
    _check_quota(user, now)
    improvement = Improvement(
        user=user,
        filename=(filename or image.filename)[:255],
        tag=tag[:255],
        size_bytes=len(data),
        created_at=now,
    )
    # The file is written outside any transaction; the quota is checked again under a lock.
    name = f"{secrets.token_hex(8)}.{_EXTENSIONS.get(info.format, 'img')}"
    improvement.image.save(name, ContentFile(data), save=False)
    try:
        with transaction.atomic():
            # Serialise one account's submissions, so that concurrent ones cannot pass the cap.
            locked = User.objects.select_for_update().filter(pk=user.pk)
            list(locked.values_list("pk", flat=True))
            _check_quota(user, now)
            improvement.save()
    except BaseException:
        improvement.image.delete(save=False)
        raise
    return improvement


def purge_expired(now: datetime | None = None) -> int:
    """Delete the submissions past CUTOUT_IMPROVE_RETENTION_DAYS; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CUTOUT_IMPROVE_RETENTION_DAYS)
    expired = Improvement.objects.filter(created_at__lt=cutoff)
    count = 0
    for improvement in expired.iterator():
        # Row first, conditionally: of several hosts purging at once, one deletes the file.
        if expired.filter(pk=improvement.pk).delete()[0]:
            improvement.image.delete(save=False)
            count += 1
    return count
