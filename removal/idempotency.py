"""`Idempotency-Key`: a repeat within 24 hours gets the first answer and is never charged again.

The first request with a key inserts a pending row; the unique (user, endpoint, key)
constraint means that of two concurrent duplicates exactly one insert wins, and only that
request does the work. A duplicate that arrives while the first is still running is told so
(409, code 4090, with `Retry-After`); one that arrives later replays the stored answer.

Answers that tell the client to retry (402, 409, 429 and every 5xx) are not stored: the row
is removed, so a retry with the same key really runs again. A pending row whose request died
(a killed worker) stops blocking its key after `STALE_PENDING`.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from removal import errors
from removal.errors import RemovalError
from removal.models import IdempotentRequest

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
# Longer than any request may run (clients wait 180 s), so a live request is never taken over.
STALE_PENDING = timedelta(minutes=10)
KEY_MAX_LENGTH = 255
RETRY_AFTER_S = 2
NOT_STORED_STATUSES = {402, 409, 429}


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    headers: dict
    body: bytes


def clean_key(raw: str) -> str:
    """The header's value, or 1011 if it is empty, too long or not printable ASCII."""
    key = raw.strip()
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not all(" " <= c <= "~" for c in key):
        raise RemovalError(errors.BAD_IDEMPOTENCY_KEY)
    return key


def claim(
    user: AbstractBaseUser, endpoint: str, key: str, fingerprint: str = ""
) -> IdempotentRequest | StoredAnswer:
    """The pending row this request now owns, or the stored answer of an earlier one.

    Raises RemovalError 4220 when the key was used for a request with another `fingerprint`
    (removal/fingerprint.py), 4090 while another request with the key is still running.
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(
                    user=user, endpoint=endpoint, key=key, fingerprint=fingerprint
                )
        except IntegrityError:
            pass
        else:
            # The user's own answers past the window go as new ones come: the table stays at
            # about a day of each active account's keyed calls without a scheduled job.
            IdempotentRequest.objects.filter(
                user=user, created_at__lte=record.created_at - WINDOW
            ).delete()
            return record
        existing = IdempotentRequest.objects.filter(user=user, endpoint=endpoint, key=key).first()
        if existing is None:
            continue  # finished and abandoned in between: try the insert again
        now = timezone.now()
        expired = existing.created_at <= now - WINDOW
        stale = existing.state == IdempotentRequest.State.PENDING and (
            existing.created_at <= now - STALE_PENDING
        )
        if expired or stale:
            # Compare-and-delete on created_at: of several takers, one deletes, all retry.
            IdempotentRequest.objects.filter(
                pk=existing.pk, created_at=existing.created_at
            ).delete()
            continue
        if fingerprint and existing.fingerprint and existing.fingerprint != fingerprint:
            raise RemovalError(errors.IDEMPOTENCY_KEY_REUSED)
        if existing.state == IdempotentRequest.State.DONE:
            return StoredAnswer(
                existing.status, existing.content_type, existing.headers, bytes(existing.body)
            )
        break
    raise RemovalError(errors.IDEMPOTENCY_IN_PROGRESS, retry_after=RETRY_AFTER_S)


def is_stored(status: int) -> bool:
    return status < 500 and status not in NOT_STORED_STATUSES


def finish(
    record: IdempotentRequest, status: int, content_type: str, headers: dict, body: bytes
) -> None:
    """Store the answer for replays, or free the key when the answer says "retry"."""
    if not is_stored(status):
        abandon(record)
        return
    updated = IdempotentRequest.objects.filter(
        pk=record.pk, state=IdempotentRequest.State.PENDING
    ).update(
        state=IdempotentRequest.State.DONE,
        status=status,
        content_type=content_type,
        headers=headers,
        body=body,
    )
    if not updated:
        logger.warning("idempotency row %s vanished before its answer was stored", record.pk)


def abandon(record: IdempotentRequest) -> None:
    IdempotentRequest.objects.filter(pk=record.pk, state=IdempotentRequest.State.PENDING).delete()


def purge_expired() -> int:
    """Delete answers older than the window; returns how many rows went."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lte=timezone.now() - WINDOW).delete()
    return deleted
