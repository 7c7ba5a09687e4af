"""Batch results in storage (Django's `default_storage`): the zip of a batch, streamed, and
the purge of results past CUTOUT_BATCH_RETENTION_HOURS (run by `manage.py purge_results`)."""

import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from batches.models import Batch, BatchItem

CHUNK = 64 * 1024


class _Pipe:
    """A write-only, unseekable file for `zipfile`: what it writes is taken out in pieces, so
    the archive is sent while it is made and never held whole."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.pieces = b"".join(self.pieces), []
        return data


def zip_stream(batch: Batch) -> Iterator[bytes]:
    """The batch's retained results as a zip (`<n>.<ext>`; stored, not compressed: PNG and
    JPEG are compressed already), at most about CHUNK bytes in memory at a time."""
    pipe = _Pipe()
    items = batch.items.filter(state=BatchItem.State.SUCCEEDED).exclude(result_name="")
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for item in items.order_by("number").iterator():
            extension = item.result_name.rsplit(".", 1)[-1]
            with (
                default_storage.open(item.result_name, "rb") as source,
                archive.open(f"{item.number}.{extension}", "w", force_zip64=True) as target,
            ):
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


def retention() -> timedelta:
    return timedelta(hours=settings.CUTOUT_BATCH_RETENTION_HOURS)


def purge_expired(now: datetime | None = None) -> int:
    """Delete the inputs and results of batches that finished more than the retention ago;
    returns how many results went. The batches and their items' states stay."""
    cutoff = (now or timezone.now()) - retention()
    purged = 0
    for batch in Batch.objects.filter(finished_at__lt=cutoff).iterator():
        for item in batch.items.exclude(result_name="", input_name=""):
            # The names are cleared first, conditionally: of several hosts purging at once,
            # exactly one clears them and so deletes the files.
            stored = {"result_name": item.result_name, "input_name": item.input_name}
            if not BatchItem.objects.filter(pk=item.pk, **stored).update(
                result_name="", input_name=""
            ):
                continue
            for name in stored.values():
                if name:
                    default_storage.delete(name)
            purged += bool(item.result_name)
    return purged
