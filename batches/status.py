"""A batch as `GET /api/v2/batches/{id}` and its webhook report it."""

from decimal import Decimal

from django.db.models import Count, Sum

from batches.models import Batch, BatchItem
from billing.formatting import format_time
from billing.models import Reservation


def status_url(batch: Batch) -> str:
    return batch.status_url


def counts(batch: Batch) -> dict[str, int]:
    found = dict(batch.items.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    result = {state: found.get(state, 0) for state in BatchItem.State.values}
    result["total"] = sum(found.values())
    return result


def credits(batch: Batch) -> dict[str, Decimal]:
    """What the items were charged, and what is still held for the rest."""
    charged = batch.items.aggregate(total=Sum("credits"))["total"] or Decimal(0)
    held = Decimal(0)
    if batch.hold_id is not None:
        open_rows = Reservation.objects.filter(status=Reservation.Status.HELD).filter(
            pk=batch.hold_id
        ) | Reservation.objects.filter(status=Reservation.Status.HELD, source_id=batch.hold_id)
        held = open_rows.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return {"charged": charged, "held": held}


def item_json(batch: Batch, item: BatchItem) -> dict:
    error = None
    if item.state == BatchItem.State.FAILED and item.error_code:
        error = {"code": item.error_code, "message": item.error_message}
    return {
        "number": item.number,
        "state": item.state,
        "attempts": item.attempts,
        "credits": item.credits,
        "error": error,
        "result_url": f"{batch.status_url}/items/{item.number}"
        if item.result_name and batch.status_url
        else None,
    }


def summary(batch: Batch, *, with_items: bool = False) -> dict:
    data = {
        "id": str(batch.pk),
        "state": batch.state,
        "test": batch.test,
        "created": format_time(batch.created_at),
        "started": format_time(batch.started_at) if batch.started_at else None,
        "finished": format_time(batch.finished_at) if batch.finished_at else None,
        "counts": counts(batch),
        "credits": credits(batch),
        "results_url": f"{batch.status_url}/results.zip" if batch.status_url else None,
    }
    if with_items:
        data["items"] = [item_json(batch, item) for item in batch.items.order_by("number")]
    return data
