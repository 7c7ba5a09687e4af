"""Working a batch's items: what Cutout adds around the queue.

- **Round-robin.** A ticket (tasks.work_next) starts the next queued item of the account that
  has waited longest (`AccountTurn`), so one large batch cannot keep other accounts waiting.
- **Lease and heartbeat.** A started item is leased for CUTOUT_BATCH_LEASE_S; a thread renews
  the lease every third of it while the work runs. `watch_lease` follows each start: an item
  whose lease ran out (its worker died) is queued again, up to CUTOUT_BATCH_MAX_ATTEMPTS.
- **Retries with back-off.** A failure that may pass (5xxx, an upstream's trouble, a crash)
  is tried again after CUTOUT_BATCH_RETRY_BASE_S × 2ⁿ; a failure of the item itself (a bad
  image, a URL refused) fails it at once with its code.
- **Money.** Each item is charged through the one charging path (`services.remove_background`
  → `charging.run`) with the batch hold as the source: its price is drawn from the hold when
  it starts and settled or released when it ends. The ledger reference is
  `batch:<id>:<n>:<failures>`: the same after a worker died (so a killed worker's item is
  charged once), a new one after a failure gave the credits back. The rest of the hold is
  released when the batch ends.
- In reseller mode the upstream's `Idempotency-Key` derives from `batch-<id>-<n>`, the same
  across retries and worker deaths.
"""

import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from batches import tasks
from batches.models import AccountTurn, Batch, BatchItem, WorkerHeartbeat
from billing import ledger
from billing.models import Reservation
from removal import calls, errors, inputs, limits, services
from removal.api.pixian.options import parse_pixian_options
from removal.api.pixian.views import result_headers
from removal.engine.types import RemovalContext
from removal.errors import RemovalError
from removal.models import CallRecord

logger = logging.getLogger(__name__)

ACTIVE = (BatchItem.State.QUEUED, BatchItem.State.RUNNING)
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease() -> timedelta:
    return timedelta(seconds=settings.CUTOUT_BATCH_LEASE_S)


def reference(batch_id: object, item: BatchItem) -> str:
    return f"batch:{batch_id}:{item.number}:{item.failures}"


# Limits that pass with time: the item waits for them and the attempt is not counted.
# A full slot (the account's, free work's, or every engine's and upstream slot's) is a wait,
# not an attempt.
WAIT_CODES = frozenset(
    {errors.RATE_LIMITED, errors.FREE_WORK_BUSY, errors.FREE_PIXELS_SPENT, errors.ENGINE_BUSY}
)


# --- claiming ----------------------------------------------------------------------------------


def _queued(now: object) -> object:
    return BatchItem.objects.filter(
        state=BatchItem.State.QUEUED,
        next_attempt_at__lte=now,
        batch__state=Batch.State.RUNNING,
    )


def claim_next() -> BatchItem | None:
    """Start the next item of the account that has waited longest, or None when nothing is
    ready. Concurrent workers skip each other's locked rows."""
    now = timezone.now()
    waiting = set(_queued(now).values_list("batch__user_id", flat=True).distinct())
    if not waiting:
        return None
    turns = dict(
        AccountTurn.objects.filter(user_id__in=waiting).values_list("user_id", "served_at")
    )
    epoch = now - timedelta(days=36500)
    for user_id in sorted(waiting, key=lambda uid: (turns.get(uid, epoch), uid)):
        with transaction.atomic():
            item = (
                _queued(now)
                .filter(batch__user_id=user_id)
                .order_by("batch__started_at", "number")
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if item is None:
                continue
            item.state = BatchItem.State.RUNNING
            item.attempts += 1
            item.lease_until = now + lease()
            item.worker = worker_name()
            item.started_at = item.started_at or now
            item.save(update_fields=["state", "attempts", "lease_until", "worker", "started_at"])
            # An upsert: two workers' first items of an account must not collide on insert.
            AccountTurn.objects.bulk_create(
                [AccountTurn(user_id=user_id, served_at=now)],
                update_conflicts=True,
                unique_fields=["user"],
                update_fields=["served_at"],
            )
            tasks.queue_lease_watch(item.pk, item.attempts, item.lease_until + timedelta(seconds=1))
        _beat(item)
        return item
    return None


def _beat(item: BatchItem | None) -> None:
    WorkerHeartbeat.objects.update_or_create(
        worker=worker_name(), defaults={"beat_at": timezone.now(), "item": item}
    )


class Heartbeat(threading.Thread):
    """Renews an item's lease (while this attempt holds it) and the worker's heartbeat."""

    def __init__(self, item: BatchItem) -> None:
        super().__init__(name=f"batch-heartbeat-{item.pk}", daemon=True)
        self.item = item
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.CUTOUT_BATCH_LEASE_S / 3):
                BatchItem.objects.filter(
                    pk=self.item.pk, state=BatchItem.State.RUNNING, attempts=self.item.attempts
                ).update(lease_until=timezone.now() + lease())
                _beat(self.item)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join()


# --- one item ----------------------------------------------------------------------------------


def work_next() -> bool:
    """Run one ticket: start and finish the next item, if any. True when one was worked."""
    item = claim_next()
    if item is None:
        return False
    try:
        process(item)
    finally:
        _beat(None)
        finish_if_done(item.batch_id)
    return True


def _image(item: BatchItem) -> inputs.ImageInput:
    if item.url:
        return inputs.ImageInput("url", url=item.url, filename=item.filename)
    with default_storage.open(item.input_name, "rb") as stored:
        return inputs.ImageInput("file", stored.read(), filename=item.filename)


def stored_result_bytes(user: AbstractBaseUser) -> int:
    return (
        BatchItem.objects.filter(batch__user=user)
        .exclude(result_name="")
        .aggregate(total=Sum("result_bytes"))["total"]
        or 0
    )


def _check_storage(user: AbstractBaseUser) -> None:
    if stored_result_bytes(user) >= settings.CUTOUT_BATCH_MAX_STORED_MB * 1024 * 1024:
        raise RemovalError(errors.BATCH_STORAGE_FULL)


def _is_transient(error: RemovalError) -> bool:
    """Cutout's or the upstream's trouble (5xx), which may pass; not the item's own fault."""
    return error.status >= 500


def process(item: BatchItem) -> None:
    """Work one started item to its end: succeeded, failed, or queued again for a retry."""
    batch = Batch.objects.select_related("user", "hold").get(pk=item.batch_id)
    user = batch.user
    call = calls.Call(
        channel=CallRecord.Channel.BATCH,
        wire_format="pixian",
        endpoint="pixian:batch-item",
        request_id=f"batch-{batch.pk.hex[:16]}-{item.number}",
        user=user,
    )
    heartbeat = Heartbeat(item)
    heartbeat.start()
    status, code = 200, None
    try:
        # A test item takes the site's free-work slot and pixel budget inside
        # services.remove_background, as an API test call does.
        with limits.in_flight(f"user:{user.pk}"):
            _check_storage(user)
            options = parse_pixian_options({**batch.options, **item.options})
            removal = services.remove_background(
                user,
                _image(item),
                options,
                reference=reference(batch.pk, item),
                context=RemovalContext(
                    reference=f"batch-{batch.pk}-{item.number}",
                    filename=item.filename,
                    account=f"user:{user.pk}",
                    endpoint="pixian:batch-item",
                ),
                call=call,
                source=batch.hold,
            )
    except RemovalError as exc:
        status, code = exc.status, exc.code
        if exc.code in WAIT_CODES:
            _wait_for_slot(item, exc.retry_after or 1)
            return
        if _is_transient(exc):
            _retry_or_fail(item, exc)
        else:
            _fail(item, exc)
    except Exception:
        logger.exception("batch item %s/%s failed", batch.pk, item.number)
        status, code = 500, errors.INTERNAL
        _retry_or_fail(item, RemovalError(errors.INTERNAL))
    else:
        _succeed(batch, item, removal)
    finally:
        heartbeat.stop()
    calls.finish(call, status, code)


def _mine(item: BatchItem) -> object:
    """The item's row while this attempt still holds it."""
    return BatchItem.objects.filter(
        pk=item.pk, state=BatchItem.State.RUNNING, attempts=item.attempts
    )


def _succeed(batch: Batch, item: BatchItem, removal: services.Removal) -> None:
    result = removal.result
    extension = EXTENSIONS.get(result.content_type, "bin")
    name = default_storage.save(
        f"batches/{batch.pk}/out/{item.number}.{extension}", ContentFile(result.body)
    )
    headers = result_headers(result, removal.charged, removal.calculated, removal.test)
    updated = _mine(item).update(
        state=BatchItem.State.SUCCEEDED,
        result_name=name,
        result_content_type=result.content_type,
        result_headers=headers,
        result_bytes=len(result.body),
        credits=removal.charged,
        error_code=None,
        error_message="",
        lease_until=None,
        finished_at=timezone.now(),
    )
    if not updated:
        # Another attempt took the item over (this worker was presumed dead): it answers.
        default_storage.delete(name)


def _fail(item: BatchItem, error: RemovalError) -> None:
    _mine(item).update(
        state=BatchItem.State.FAILED,
        error_code=error.code,
        error_message=error.message[:500],
        failures=item.failures + 1,
        lease_until=None,
        finished_at=timezone.now(),
    )


def _retry_or_fail(item: BatchItem, error: RemovalError) -> None:
    if item.attempts >= settings.CUTOUT_BATCH_MAX_ATTEMPTS:
        _fail(item, error)
        return
    delay = timedelta(seconds=settings.CUTOUT_BATCH_RETRY_BASE_S * 2 ** (item.attempts - 1))
    when = timezone.now() + delay
    with transaction.atomic():
        if _mine(item).update(
            state=BatchItem.State.QUEUED,
            error_code=error.code,
            error_message=error.message[:500],
            failures=item.failures + 1,
            next_attempt_at=when,
            lease_until=None,
            worker="",
        ):
            tasks.queue_work(run_after=when)


def _wait_for_slot(item: BatchItem, seconds: int) -> None:
    """The account's concurrency is taken (its API calls, its other items): back to the
    queue, this start not counted as an attempt."""
    when = timezone.now() + timedelta(seconds=seconds)
    with transaction.atomic():
        if _mine(item).update(
            state=BatchItem.State.QUEUED,
            attempts=item.attempts - 1,
            next_attempt_at=when,
            lease_until=None,
            worker="",
        ):
            tasks.queue_work(run_after=when)


def watch_lease(item_id: int, attempt: int) -> None:
    """Follow one start of an item: nothing to do once it ended or started again; its lease
    renewed, look again later; its lease run out (the worker died), queue it again, or fail
    it after CUTOUT_BATCH_MAX_ATTEMPTS starts."""
    now = timezone.now()
    with transaction.atomic():
        item = BatchItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None or item.state != BatchItem.State.RUNNING or item.attempts != attempt:
            return
        if item.lease_until and item.lease_until > now:
            tasks.queue_lease_watch(item.pk, attempt, item.lease_until + timedelta(seconds=1))
            return
        logger.warning(
            "batch item %s/%s: worker %s lost it", item.batch_id, item.number, item.worker
        )
        if item.attempts >= settings.CUTOUT_BATCH_MAX_ATTEMPTS:
            item.state = BatchItem.State.FAILED
            item.error_code = errors.BATCH_WORKER_LOST
            item.error_message = errors.spec_for(errors.BATCH_WORKER_LOST).message
            item.finished_at = now
        else:
            # The same ledger reference: what the dead worker held is this item's hold still.
            item.state = BatchItem.State.QUEUED
            item.next_attempt_at = now
            tasks.queue_work()
        item.lease_until = None
        item.worker = ""
        item.save()
    finish_if_done(item.batch_id)


# --- the end of a batch ------------------------------------------------------------------------


def finish_if_done(batch_id: object) -> Batch | None:
    """Once no item is queued or running: release what is left of the hold, set the batch's
    end state, and queue its webhook. Returns the batch when this call finished it."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.finished_at is not None or batch.state == Batch.State.OPEN:
            return None
        if batch.items.filter(state__in=ACTIVE).exists():
            return None
        if batch.hold_id is not None:
            for leftover in Reservation.objects.filter(
                source_id=batch.hold_id, status=Reservation.Status.HELD
            ):
                ledger.release(leftover)
            ledger.release(batch.hold)
        if batch.state == Batch.State.RUNNING:
            succeeded = batch.items.filter(state=BatchItem.State.SUCCEEDED).exists()
            batch.state = Batch.State.COMPLETED if succeeded else Batch.State.FAILED
        batch.finished_at = timezone.now()
        batch.save(update_fields=["state", "finished_at"])
        if batch.webhook_url and batch.state != Batch.State.CANCELLED:
            tasks.queue_webhook(batch.pk, 1)
    return batch
