"""What a batch may be, checked whole at submission: every item's image and options (a bad
item is refused then, with its index), the webhook URL, the counts, and the price, held as
one batch hold when the batch starts (nothing is held when it is refused).

JSON batches start at once; multipart batches stay open for more files (`add_items`) until
`start`.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from batches import tasks, webhooks
from batches.models import Batch, BatchItem
from billing import ledger, pricing
from removal import errors, fetch, inputs, safe_http
from removal.api.pixian.options import parse_pixian_options
from removal.errors import RemovalError

MAX_JSON_ITEMS = 1000
MAX_FILES_PER_UPLOAD = 100
# Fields an item of a JSON batch may have besides its image.
ITEM_KEYS = {"image.url", "image.base64", "options"}


@dataclass(frozen=True)
class ItemSpec:
    image: inputs.ImageInput
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """A parsed batch (or a parsed set of files to add), with its fingerprint parts."""

    options: dict[str, str]
    items: list[ItemSpec]
    webhook_url: str = ""

    def parts(self) -> list[Any]:
        return [
            self.options,
            self.webhook_url,
            [
                [item.image.url or item.image.data, item.image.filename, item.options]
                for item in self.items
            ],
        ]


def _fields(value: Any, where: str) -> dict[str, str]:
    """A JSON object of Pixian fields as the strings a form would carry."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RemovalError(errors.BATCH_BODY, f"{where} must be an object of Pixian fields.")
    plain: dict[str, str] = {}
    for name, item in value.items():
        if isinstance(item, bool):
            plain[str(name)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            plain[str(name)] = str(item)
        else:
            raise RemovalError(errors.BATCH_BODY, f"{where}.{name} must be a string or number.")
    return plain


def _check_url_item(image: inputs.ImageInput, where: str) -> None:
    """A URL's scheme and host now; a literal address must be public (a host name is resolved,
    and its address checked, when the item is fetched)."""
    url = fetch.checked_url(image.url, f"{where}.image.url")
    allowed = safe_http.is_literal_allowed(
        url.host, allow_loopback=settings.CUTOUT_ALLOW_LOOPBACK_URLS
    )
    if not allowed:
        raise RemovalError(
            errors.URL_ADDRESS,
            f"{where}.image.url: the host is a private, loopback or reserved address.",
        )


def _checked_item(batch_options: dict[str, str], item: ItemSpec, where: str) -> None:
    if "test" in item.options:
        raise RemovalError(errors.BATCH_ITEM_TEST, f"{where}: {errors.spec_for(6005).message}")
    try:
        parse_pixian_options({**batch_options, **item.options})
        if item.image.kind == "url":
            _check_url_item(item.image, where)
    except RemovalError as exc:
        if exc.message.startswith(where):
            raise
        raise RemovalError(exc.code, f"{where}: {exc.message}") from None


def _checked(submission: Submission, first_number: int = 0) -> Submission:
    for index, item in enumerate(submission.items):
        _checked_item(submission.options, item, f"items[{first_number + index}]")
    return submission


def parse_json(data: Any) -> Submission:
    """`{"options": {…}, "items": [{"image.url": …, "options": {…}}], "webhook_url": …}`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        raise RemovalError(errors.BATCH_BODY)
    unknown = set(data) - {"options", "items", "webhook_url"}
    if unknown:
        raise RemovalError(
            errors.BATCH_BODY, f"Unknown batch fields: {', '.join(sorted(unknown))}."
        )
    raw_items: list = data["items"]
    if len(raw_items) > MAX_JSON_ITEMS:
        raise RemovalError(
            errors.BATCH_TOO_MANY_ITEMS, f"A batch takes at most {MAX_JSON_ITEMS:,} items."
        )
    options = _fields(data.get("options"), "options")
    webhook_url = data.get("webhook_url") or ""
    if not isinstance(webhook_url, str):
        raise RemovalError(errors.WEBHOOK_URL_BAD)
    items = []
    for index, raw in enumerate(raw_items):
        where = f"items[{index}]"
        if not isinstance(raw, Mapping):
            raise RemovalError(errors.BATCH_BODY, f"{where} must be an object.")
        extra = set(raw) - ITEM_KEYS
        if extra:
            raise RemovalError(
                errors.BATCH_BODY, f"{where}: unknown fields {', '.join(sorted(extra))}."
            )
        fields = {name: value for name, value in raw.items() if name != "options"}
        try:
            image = inputs.select_input(fields, {})
        except RemovalError as exc:
            raise RemovalError(exc.code, f"{where}: {exc.message}") from None
        items.append(ItemSpec(image, _fields(raw.get("options"), f"{where}.options")))
    return _checked(Submission(options, items, webhook_url.strip()))


def parse_multipart(fields: Mapping[str, Any], files: Any, first_number: int = 0) -> Submission:
    """Image files under `image` (several), the Pixian fields and `webhook_url` as form
    fields. At most 100 files per request; the body's size is the upload limit's."""
    uploads = files.getlist("image") if hasattr(files, "getlist") else []
    if len(uploads) > MAX_FILES_PER_UPLOAD:
        raise RemovalError(
            errors.BATCH_TOO_MANY_ITEMS,
            f"At most {MAX_FILES_PER_UPLOAD} files per request; add more with POST …/items.",
        )
    items = []
    for index, upload in enumerate(uploads):
        upload.seek(0)
        data = upload.read()
        if not data:
            raise RemovalError(
                errors.EMPTY_IMAGE, f"items[{first_number + index}]: the file is empty."
            )
        items.append(ItemSpec(inputs.ImageInput("file", data, filename=upload.name or "")))
    options = {name: str(fields[name]) for name in fields if name not in {"image", "webhook_url"}}
    webhook_url = str(fields.get("webhook_url", "")).strip()
    return _checked(Submission(options, items, webhook_url), first_number)


def _store_inputs(batch_id: uuid.UUID, items: Sequence[ItemSpec], first: int) -> list[BatchItem]:
    rows = []
    for number, item in enumerate(items, start=first):
        row = BatchItem(number=number, options=item.options, filename=item.image.filename[:255])
        if item.image.kind == "url":
            row.url = item.image.url
        else:
            row.input_name = default_storage.save(
                f"batches/{batch_id}/in/{number}", ContentFile(item.image.data)
            )
        rows.append(row)
    return rows


def _check_test_size(test: bool, count: int) -> None:
    if test and count > settings.CUTOUT_BATCH_TEST_ITEMS:
        raise RemovalError(
            errors.BATCH_TEST_TOO_MANY,
            f"A test batch takes at most {settings.CUTOUT_BATCH_TEST_ITEMS} items.",
        )


def create(
    user: AbstractBaseUser, submission: Submission, *, start_now: bool, status_url_base: str = ""
) -> Batch:
    """A new batch of `submission`'s items; started (held, queued) when `start_now`.
    `status_url_base` + the batch id is where its status is read (the webhook says so).

    Raises RemovalError: 6003 for no items when starting, 6004 for a test batch that is too
    large, 6006/6007 for the webhook URL, 4020/4021 when the balance cannot pay (nothing held).
    """
    test = parse_pixian_options(submission.options).test
    if start_now and not submission.items:
        raise RemovalError(errors.BATCH_EMPTY)
    _check_test_size(test, len(submission.items))
    if submission.webhook_url:
        webhooks.check_url(submission.webhook_url)
    batch_id = uuid.uuid4()
    rows = _store_inputs(batch_id, submission.items, 0)
    with transaction.atomic():
        batch = Batch.objects.create(
            id=batch_id,
            user=user,
            options=submission.options,
            test=test,
            webhook_url=submission.webhook_url,
            status_url=f"{status_url_base}{batch_id}" if status_url_base else "",
        )
        for row in rows:
            row.batch = batch
        BatchItem.objects.bulk_create(rows)
        if start_now:
            _start(batch)
    return batch


def add_items(batch: Batch, submission: Submission) -> Batch:
    """More files for an open batch (each request within the upload limit)."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.state != Batch.State.OPEN:
            raise RemovalError(errors.BATCH_NOT_OPEN)
        first = batch.items.count()
        if first + len(submission.items) > MAX_JSON_ITEMS:
            raise RemovalError(
                errors.BATCH_TOO_MANY_ITEMS, f"A batch takes at most {MAX_JSON_ITEMS:,} items."
            )
        _check_test_size(batch.test, first + len(submission.items))
        rows = _store_inputs(batch.pk, submission.items, first)
        for row in rows:
            row.batch = batch
        BatchItem.objects.bulk_create(rows)
    return batch


def start(batch: Batch) -> Batch:
    """Hold the whole price and queue every item (6009 once started, 6003 when empty)."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.state != Batch.State.OPEN:
            raise RemovalError(errors.BATCH_NOT_OPEN, "This batch has started already.")
        if not batch.items.exists():
            raise RemovalError(errors.BATCH_EMPTY)
        _start(batch)
    return batch


def _start(batch: Batch) -> None:
    """Inside the caller's transaction: a refusal rolls back the whole submission."""
    count = batch.items.count()
    quote = pricing.quote(pricing.IMAGE, test=batch.test)
    if not quote.is_free:
        try:
            batch.hold = ledger.hold_batch(
                batch.user, quote.hold * count, f"batch:{batch.pk}", cause=f"{count} items"
            )
        except ledger.InsufficientCreditsError as exc:
            raise RemovalError(exc.code, f"This batch of {count} items: {exc}") from None
    batch.state = Batch.State.RUNNING
    batch.started_at = timezone.now()
    batch.save(update_fields=["hold", "state", "started_at"])
    batch.items.update(next_attempt_at=batch.started_at)
    tasks.queue_work(count)


def cancel(batch: Batch) -> Batch:
    """Cancel what has not started; items already running finish (and are charged), then
    the rest of the hold is released. 6010 for a batch that has finished."""
    from batches import work

    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.is_finished:
            raise RemovalError(errors.BATCH_FINISHED)
        batch.state = Batch.State.CANCELLED
        batch.save(update_fields=["state"])
        batch.items.filter(state=BatchItem.State.QUEUED).update(
            state=BatchItem.State.CANCELLED, finished_at=timezone.now()
        )
    work.finish_if_done(batch.pk)
    batch.refresh_from_db()
    return batch
