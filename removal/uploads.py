"""The website's uploads: each image is analysed and charged once, then re-rendered for free.

`create_upload()` follows the API's order of checks (spec/pixian-v2.md): the image's header is
probed (400s), then through the one charging path (removal/charging.py) the price is held
(402, skipped in test mode), the expensive analysis runs outside any transaction, the original
and its alpha are stored (Django's default storage, so S3 works), and the hold is settled;
any failure releases it, so a failed upload charges nothing.

`render_upload()` re-renders a stored upload with other options at no charge. An upload made
in test mode is not paid for: its first render outside test mode is rendered first (a bad
option costs nothing), then its payment is claimed and charged in one transaction, so that of
several such renders at once exactly one pays and none returns a production result unpaid.
Stored files live for `CUTOUT_UPLOAD_RETENTION_HOURS` (a visitor's try-out for
`TRYOUT_LIFETIME`); `manage.py purge_results` deletes them. An original the browser cannot show
gets a small JPEG preview at upload (removal/previews.py), stored and purged with it.
"""

import dataclasses
import io
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from PIL import Image

from billing import ledger, pricing
from removal import active_engine, charging, errors, limits, previews, services
from removal.calls import Call
from removal.engine import cutouts, decode, encode
from removal.engine.types import Cutout, RemovalContext, RemovalOptions, RemovalResult
from removal.errors import RemovalError
from removal.inputs import ImageInput
from removal.models import Upload

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z0-9-]{8,64}")
# A batch on the page sends this many images at a time: enough to overlap one upload with
# another's inference, few enough to leave the server's cores to other users.
PAGE_PARALLEL_UPLOADS = 2
# Restored cut-outs of the most recent uploads, so that a user trying options one after the
# other does not pay a decode each time (per process; a miss only costs that decode).
_CACHE_SIZE = 4
_cache: OrderedDict[str, Cutout] = OrderedDict()
_cache_lock = threading.Lock()
# A visitor's try-out is kept this long, then purged (unless an account adopts it).
TRYOUT_LIFETIME = timedelta(hours=1)
PURGE_BATCH = 200


@dataclass(frozen=True)
class UploaderState:
    """What the upload page shows before the first upload."""

    credits: Decimal
    price: Decimal
    test_default: bool
    max_upload_bytes: int
    parallel: int = PAGE_PARALLEL_UPLOADS
    tryout: bool = False
    tryouts_per_day: int = 0

    @property
    def max_upload_mb(self) -> int:
        """The limit in MB of 1,048,576 bytes: the page says "MB" for MiB throughout."""
        return self.max_upload_bytes // (1024 * 1024)


@dataclass(frozen=True)
class Rendering:
    """One result for the page: what this request charged, and the balance after it."""

    upload: Upload
    result: RemovalResult
    charged: Decimal
    calculated: Decimal
    credits: Decimal
    test: bool


def uploader_state(user: AbstractBaseUser) -> UploaderState:
    """The page's starting point; test mode starts on when the balance cannot pay an image."""
    credits = ledger.account_summary(user).credits
    price = pricing.production_price()
    return UploaderState(
        credits=credits,
        price=price,
        test_default=credits < price,
        max_upload_bytes=settings.CUTOUT_MAX_UPLOAD_MB * 1024 * 1024,
    )


def clean_key(value: object) -> str:
    """The page's id for one file (a retried POST carries the same); a fresh one otherwise."""
    if isinstance(value, str) and _KEY.fullmatch(value):
        return value
    return secrets.token_hex(16)


def _reference(upload_key: str) -> str:
    # Unique per attempt: the ledger answers a repeated reference with its first reservation,
    # even a released one, and a retried upload must hold its credits anew.
    return f"web:{upload_key}:{secrets.token_hex(6)}"


def _owned(user: AbstractBaseUser | None, visitor: str) -> dict:
    """The filter for one owner's uploads: an account's, or a visitor's try-outs."""
    return {"user": user} if user is not None else {"user": None, "visitor": visitor}


def _store(
    user: AbstractBaseUser | None,
    visitor: str,
    key: str,
    data: bytes,
    info: decode.ImageInfo,
    filename: str,
    cutout: Cutout,
    paid: bool,
) -> tuple[Upload, bool]:
    """Save the original, its alpha and (when the browser needs one) a preview; (upload,
    created). Not created: the same file (same key) posted twice at once, and the other
    request stored it first."""
    lifetime = (
        timedelta(hours=settings.CUTOUT_UPLOAD_RETENTION_HOURS)
        if user is not None
        else TRYOUT_LIFETIME
    )
    upload = Upload(
        user=user,
        visitor="" if user is not None else visitor,
        key=key,
        filename=filename[:255],
        width=cutout.full_size[0],
        height=cutout.full_size[1],
        paid=paid,
        expires_at=timezone.now() + lifetime,
    )
    upload.original.save("original", ContentFile(data), save=False)
    upload.alpha.save("alpha.png", ContentFile(encode.mask_png(cutout.alpha)), save=False)
    if previews.needed(info):
        upload.preview.save("preview.jpg", ContentFile(previews.make(cutout.rgb)), save=False)
    try:
        with transaction.atomic():
            upload.save()
    except IntegrityError:
        _delete_files(upload)
        return Upload.objects.get(key=key, **_owned(user, visitor)), False
    _remember(upload.public_id, cutout)
    return upload, True


def _rendering(
    upload: Upload,
    result: RemovalResult,
    paid: charging.Charged,
    test: bool,
    fields: Mapping[str, str] | None,
) -> Rendering:
    updates: dict[str, object] = {}
    if paid.charged:
        updates["charged"] = F("charged") + paid.charged
    if fields is not None:
        updates["options"] = upload.options = dict(fields)
    if updates:
        Upload.objects.filter(pk=upload.pk).update(**updates)
    credits = ledger.account_summary(upload.user).credits if upload.user else Decimal(0)
    return Rendering(
        upload=upload,
        result=result,
        charged=paid.charged,
        calculated=paid.calculated,
        credits=credits,
        test=test,
    )


def create_upload(
    user: AbstractBaseUser | None,
    image: ImageInput,
    options: RemovalOptions,
    *,
    key: str,
    call: Call | None = None,
    visitor: str = "",
    bounds: decode.ImageBounds = decode.DEFAULT_BOUNDS,
    fields: Mapping[str, str] | None = None,
) -> Rendering:
    """Analyse `image` for `user`, charge it once (unless `options.test`), store what
    re-rendering needs, and render it with `options`. Without a user, the upload is the
    try-out of the session token `visitor` (removal/tryouts.py, test mode only: free).

    A repeated `key` (a retried request) renders the stored upload again and charges nothing
    more. `fields` (the option fields as sent) are kept for the history's re-download.
    Raises RemovalError: 1xxx for a bad image (or one outside `bounds`), 4020/4021 when the
    balance cannot pay, whatever the engine raises (after releasing the hold).
    """
    existing = Upload.objects.filter(key=key, **_owned(user, visitor)).first()
    if existing is not None:
        return render_upload(existing, options, call=call, fields=fields)
    with limits.free_work() if options.test else nullcontext():
        data = services.image_bytes(image)  # image.url: fetched under the API's rules
        info = decode.probe(data, bounds)
        if options.test:
            owner = f"user:{user.pk}" if user is not None else f"visitor:{visitor}"
            limits.spend_free_pixels(owner, info.width * info.height)
        if call is not None:
            call.test = options.test
            call.saw_input(data, info)
        reference = _reference(key)
        context = _context(user, visitor, key, image.filename, options)

        def analyse_and_store() -> tuple[Cutout, Upload, bool]:
            cutout = active_engine.analyse(data, options, context, free=options.test)
            upload, created = _store(
                user, visitor, key, data, info, image.filename, cutout, not options.test
            )
            return cutout, upload, created

        paid = charging.run(
            user,
            pricing.quote(pricing.IMAGE, test=options.test),
            reference,
            analyse_and_store,
            # The twin request that stored this key first pays; this one charges nothing.
            due=lambda stored: services.upstream_due(stored[0]) if stored[2] else Decimal(0),
            call=call,
        )
        cutout, upload, _ = paid.result
        result = active_engine.render(cutout, options, free=options.test)
    if call is not None:
        call.saw_result(result)
    return _rendering(upload, result, paid, options.test, fields)


def get_upload(user: AbstractBaseUser | None, public_id: str, visitor: str = "") -> Upload:
    """`user`'s upload (without a user: `visitor`'s try-out), while it is kept; 404 (code
    4040) otherwise, also for anyone else's."""
    if user is None and not visitor:
        raise RemovalError(errors.NOT_FOUND, "No such upload.")
    upload = Upload.objects.filter(public_id=public_id, **_owned(user, visitor)).first()
    if upload is None:
        raise RemovalError(errors.NOT_FOUND, "No such upload.")
    if upload.expires_at <= timezone.now():
        raise RemovalError(errors.NOT_FOUND, "This upload has expired: upload the image again.")
    return upload


class _UploadPayment:
    """The claim that an upload is paid for, taken in the same transaction as the hold."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload
        self.taken = False

    def take(self) -> bool:
        # A conditional UPDATE: of several at once, the database lets exactly one flip it.
        self.taken = Upload.objects.filter(pk=self.upload.pk, paid=False).update(paid=True) == 1
        return self.taken

    def give_back(self) -> None:
        Upload.objects.filter(pk=self.upload.pk).update(paid=False)


def render_upload(
    upload: Upload,
    options: RemovalOptions,
    *,
    call: Call | None = None,
    fields: Mapping[str, str] | None = None,
) -> Rendering:
    """Render a stored upload with `options`. Free, except that the first render outside test
    mode of an upload made in test mode charges the image's price (once)."""
    quote = pricing.quote(pricing.IMAGE, test=options.test)
    if call is not None:
        call.test = options.test
    if not (options.test or upload.paid):
        # Refuse before rendering what the balance cannot pay (a 0-credit account must not
        # get the work done for nothing); the hold below is what really decides.
        try:
            ledger.check_affordable(upload.user, quote.hold)
        except ledger.InsufficientCreditsError as exc:
            # A concurrent render may have paid since this one read the upload: its claim
            # and its hold commit together, so the hold seen here comes with `paid` set.
            upload.refresh_from_db(fields=["paid"])
            if not upload.paid:
                raise RemovalError(exc.code, str(exc)) from None
    if options.test or upload.paid:
        result = active_engine.render(restore_cutout(upload), options, free=options.test)
        paid = charging.Charged(result=result, charged=Decimal(0), calculated=quote.calculated)
    elif pricing.reseller_mode():
        # The test-mode analysis came from the upstream's free (watermarked) call: the first
        # production render is one production upstream call, charged what it costs, once.
        payment = _UploadPayment(upload)

        def analysed_and_rendered() -> RemovalResult:
            # Only the render that took the payment asks the upstream; a twin renders the kept
            # analysis and charges nothing. Rendered inside the charge: a failure costs nothing.
            cutout = _analysed_again(upload, options) if payment.taken else restore_cutout(upload)
            rendered = active_engine.render(cutout, options)
            rendered.upstream_credits = cutout.upstream_credits
            return rendered

        paid = charging.run(
            upload.user,
            quote,
            _reference(upload.key),
            analysed_and_rendered,
            due=services.upstream_due,
            claim=payment,
            call=call,
        )
        result = paid.result
        upload.paid = True
    else:
        result = active_engine.render(restore_cutout(upload), options)
        paid = charging.run(
            upload.user,
            quote,
            _reference(upload.key),
            lambda: result,
            claim=_UploadPayment(upload),
            call=call,
        )
        upload.paid = True
    if call is not None:
        call.saw_result(result)
    return _rendering(upload, result, paid, options.test, fields)


def _context(
    user: AbstractBaseUser | None, visitor: str, key: str, filename: str, options: RemovalOptions
) -> RemovalContext:
    """An upstream engine's key for this upload: the same page retrying the same file in the
    same mode sends the same key (a Cutout upstream answers it once)."""
    return RemovalContext(
        reference=key,
        filename=filename,
        account=f"user:{user.pk}" if user is not None else f"visitor:{visitor}",
        endpoint="web:upload",
        fingerprint="test" if options.test else "production",
    )


def _analysed_again(upload: Upload, options: RemovalOptions) -> Cutout:
    """A test-mode upload analysed again in production (reseller mode), kept for re-renders."""
    with upload.original.open("rb") as f:
        data = f.read()
    cutout = active_engine.analyse(
        data,
        dataclasses.replace(options, test=False),
        _context(upload.user, upload.visitor, upload.key, upload.filename, options),
    )
    stale = upload.alpha.name
    upload.alpha.save("alpha.png", ContentFile(encode.mask_png(cutout.alpha)), save=False)
    Upload.objects.filter(pk=upload.pk).update(alpha=upload.alpha.name)
    upload.alpha.storage.delete(stale)
    _remember(upload.public_id, cutout)
    return cutout


def _remember(public_id: str, cutout: Cutout) -> None:
    with _cache_lock:
        _cache[public_id] = cutout
        _cache.move_to_end(public_id)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def restore_cutout(upload: Upload) -> Cutout:
    """The upload's Cutout as the engine's `analyse()` made it, from the stored original and
    alpha (engine/cutouts.py), kept for the next render in this process."""
    with _cache_lock:
        cutout = _cache.get(upload.public_id)
        if cutout is not None:
            _cache.move_to_end(upload.public_id)
            return cutout
    with upload.original.open("rb") as f:
        data = f.read()
    with upload.alpha.open("rb") as f, Image.open(io.BytesIO(f.read())) as im:
        alpha = np.asarray(im.convert("L")).copy()
    cutout = cutouts.restore(data, alpha)
    _remember(upload.public_id, cutout)
    return cutout


def _delete_files(upload: Upload) -> None:
    for field in (upload.original, upload.alpha, upload.preview, upload.thumbnail):
        if field.name:
            field.storage.delete(field.name)


def _claim_and_delete(rows: QuerySet[Upload], upload: Upload) -> bool:
    """Delete `upload`'s row if it is still in `rows`, then its files; False when it was not.

    The row goes first, in one conditional DELETE: of several hosts purging at once (or a
    purge and the owner's delete), exactly one deletes it and so removes the files; a row
    changed meanwhile (a try-out adopted, its expiry moved) is not in `rows` and stays."""
    if not rows.filter(pk=upload.pk).delete()[0]:
        return False
    with _cache_lock:
        _cache.pop(upload.public_id, None)
    _delete_files(upload)
    return True


def delete_upload(upload: Upload) -> bool:
    """Delete the upload at once: its row, original, alpha and preview (the owner asked)."""
    return _claim_and_delete(Upload.objects.all(), upload)


def purge_expired(now: datetime | None = None) -> int:
    """Delete the stored files and rows of uploads past their retention; returns how many
    this call deleted. Safe on several hosts at once (`_claim_and_delete`)."""
    expired = Upload.objects.filter(expires_at__lte=now or timezone.now())
    count = 0
    # Batches read in full, no cursor left open while rows go (SQLite would lock the table).
    while batch := list(expired.order_by("pk")[:PURGE_BATCH]):
        count += sum(_claim_and_delete(expired, upload) for upload in batch)
    return count


def adopt_tryouts(visitor: str, user: AbstractBaseUser) -> list[str]:
    """Give `visitor`'s unexpired try-outs to `user` (who signed up in that session), kept as
    long as any upload of theirs and still unpaid; returns their public ids."""
    if not visitor:
        return []
    tryouts = Upload.objects.filter(user=None, visitor=visitor, expires_at__gt=timezone.now())
    ids = list(tryouts.values_list("public_id", flat=True))
    Upload.objects.filter(public_id__in=ids, user=None).update(
        user=user,
        visitor="",
        expires_at=timezone.now() + timedelta(hours=settings.CUTOUT_UPLOAD_RETENTION_HOURS),
    )
    return ids


def original_file(upload: Upload) -> FieldFile:
    """What the page shows as the upload's original: the preview when one was made (the
    browser cannot show the file itself), else the original file."""
    return upload.preview if upload.preview else upload.original
