"""The batch tasks on django-tasks (database backend: `manage.py db_worker` runs them).

A `work_next` task is a ticket: the worker that runs it takes whichever queued item's account
has waited longest (batches/work.py), so tickets need not name an item. One ticket is queued
per item at start and per retry; `watch_lease` follows each started item and brings it back
when its worker died; `deliver_webhook` runs each webhook attempt.
"""

import uuid
from datetime import datetime, timedelta

from django.utils import timezone
from django_tasks import task

# Webhooks and lease checks go before the many tickets of a large batch.
URGENT = 10


# A ticket that fails unexpectedly is replaced after this long, so no queued item is left
# without one.
REPLACE_AFTER_S = 30


@task()
def work_next() -> None:
    from batches import work

    try:
        work.work_next()
    except Exception:
        queue_work(run_after=timezone.now() + timedelta(seconds=REPLACE_AFTER_S))
        raise


@task(priority=URGENT)
def watch_lease(item_id: int, attempt: int) -> None:
    from batches import work

    work.watch_lease(item_id, attempt)


@task(priority=URGENT)
def deliver_webhook(batch_id: str, attempt: int) -> None:
    from batches import webhooks

    webhooks.deliver(batch_id, attempt)


def queue_work(count: int = 1, *, run_after: datetime | None = None) -> None:
    ticket = work_next.using(run_after=run_after) if run_after else work_next
    for _ in range(count):
        ticket.enqueue()


def queue_lease_watch(item_id: int, attempt: int, run_after: datetime) -> None:
    watch_lease.using(run_after=run_after).enqueue(item_id, attempt)


def queue_webhook(batch_id: uuid.UUID, attempt: int, *, run_after: datetime | None = None) -> None:
    delivery = deliver_webhook.using(run_after=run_after) if run_after else deliver_webhook
    delivery.enqueue(str(batch_id), attempt)
