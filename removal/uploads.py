"""The website's uploads: each image is analysed and charged once, then re-rendered for free.

`create_upload()` follows the API's order of checks (spec/pixian-v2.md): the image's header is
probed (400s), credits are reserved (402, skipped in test mode), the expensive analysis runs
outside any transaction, the original and its alpha are stored (Django's default storage, so
S3 works), and only then is the reservation settled; any failure releases it, so a failed
upload charges nothing.

`render_upload()` re-renders a stored upload with other options at no charge. An upload made
in test mode is not paid for; its first render outside test mode charges it, once.
Stored files live for `CUTOUT_UPLOAD_RETENTION_HOURS`; `manage.py purge_results` deletes them.
"""

import io
import logging
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from billing import ledger, pricing
from removal import active_engine, errors, services
from removal.engine import decode, encode
from removal.engine.types import Cutout, RemovalOptions, RemovalResult
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
_cache: OrderedDict[int, Cutout] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class UploaderState:
    """What the upload page shows before the first upload."""

    credits: Decimal
    price: Decimal
    test_default: bool
    max_upload_mb: int
    parallel: int = PAGE_PARALLEL_UPLOADS

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


@dataclass(frozen=True)
class Rendering:
    """One result for the page: what this request charged, and the balance after it."""

    upload: Upload
    result: RemovalResult
    charged: Decimal
    calculated: Decimal
    credits: Decimal
    test: bool


def uploader_state(user) -> UploaderState:
    """The page's starting point; test mode starts on when the balance cannot pay an image."""
    credits = ledger.account_summary(user).credits
    price = pricing.production_price()
    return UploaderState(
        credits=credits,
        price=price,
        test_default=credits < price,
        max_upload_mb=settings.CUTOUT_MAX_UPLOAD_MB,
    )


def clean_key(value) -> str:
    """The page's id for one file (a retried POST carries the same); a fresh one otherwise."""
    if isinstance(value, str) and _KEY.fullmatch(value):
        return value
    return secrets.token_hex(16)


def _local_engine():
    remover = active_engine.get_remover()
    if not hasattr(remover, "analyse"):
        # Reseller mode keeps no alpha to re-render from; the website needs the local engine.
        raise RemovalError(
            errors.UPSTREAM_UNAVAILABLE, "The website's upload page needs the local engine."
        )
    return remover


def _reserve(user, amount: Decimal, reference: str) -> "ledger.Reservation":
    try:
        return ledger.reserve(user, amount, reference, cause=f"website {reference}")
    except ledger.InsufficientCreditsError as exc:  # CreditsLapsedError too (code 4021)
        raise RemovalError(exc.code, str(exc)) from None


def _settle(reservation) -> Decimal:
    try:
        return -ledger.settle(reservation).amount
    except ledger.ReservationClosedError:
        logger.warning("upload %s finished after its reservation was released", reservation)
        return Decimal(0)


def _alpha_png(alpha: np.ndarray) -> bytes:
    return encode.mask_png(alpha)


def _reference(upload_key: str) -> str:
    # Unique per attempt: the ledger answers a repeated reference with its first reservation,
    # even a released one, and a retried upload must hold its credits anew.
    return f"web:{upload_key}:{secrets.token_hex(6)}"


def _store(
    user, key: str, data: bytes, filename: str, cutout: Cutout, paid: bool
) -> tuple[Upload, bool]:
    """Save the original and its alpha; (upload, created). Not created: the same file (same
    key) posted twice at once, and the other request stored it first."""
    upload = Upload(
        user=user,
        key=key,
        filename=filename[:255],
        width=cutout.full_size[0],
        height=cutout.full_size[1],
        paid=paid,
        expires_at=timezone.now() + timedelta(hours=settings.CUTOUT_UPLOAD_RETENTION_HOURS),
    )
    upload.original.save("original", ContentFile(data), save=False)
    upload.alpha.save("alpha.png", ContentFile(_alpha_png(cutout.alpha)), save=False)
    try:
        with transaction.atomic():
            upload.save()
    except IntegrityError:
        _delete_files(upload)
        return Upload.objects.get(user=user, key=key), False
    _remember(upload.pk, cutout)
    return upload, True


def create_upload(user, image: ImageInput, options: RemovalOptions, *, key: str) -> Rendering:
    """Analyse `image` for `user`, charge it once (unless `options.test`), store what
    re-rendering needs, and render it with `options`.

    A repeated `key` (a retried request) renders the stored upload again and charges nothing
    more. Raises RemovalError: 1xxx for a bad image, 4020/4021 when the balance cannot pay,
    whatever the engine raises (after releasing the reservation).
    """
    existing = Upload.objects.filter(user=user, key=key).first()
    if existing is not None:
        return render_upload(existing, options)
    remover = _local_engine()
    data = services.image_bytes(image)  # image.url: fetched under the API's rules
    decode.probe(data)
    quote = pricing.quote(pricing.IMAGE, test=options.test)
    reservation = None if quote.is_free else _reserve(user, quote.hold, _reference(key))
    try:
        cutout = remover.analyse(data, options)
        upload, created = _store(user, key, data, image.filename, cutout, reservation is not None)
    except BaseException:
        if reservation is not None:
            ledger.release(reservation)
        raise
    charged = Decimal(0)
    if reservation is not None and not created:
        ledger.release(reservation)  # the twin request pays; this one is the same upload
    elif reservation is not None:
        charged = _settle(reservation)
        Upload.objects.filter(pk=upload.pk).update(charged=F("charged") + charged)
    result = remover.render(cutout, options)
    return Rendering(
        upload=upload,
        result=result,
        charged=charged,
        calculated=quote.calculated,
        credits=ledger.account_summary(user).credits,
        test=options.test,
    )


def get_upload(user, public_id: str) -> Upload:
    """`user`'s upload, while it is kept; 404 (code 4040) otherwise, also for other users'."""
    upload = Upload.objects.filter(user=user, public_id=public_id).first()
    if upload is None:
        raise RemovalError(errors.NOT_FOUND, "No such upload.")
    if upload.expires_at <= timezone.now():
        raise RemovalError(errors.NOT_FOUND, "This upload has expired: upload the image again.")
    return upload


def render_upload(upload: Upload, options: RemovalOptions) -> Rendering:
    """Render a stored upload with `options`. Free, except that the first render outside test
    mode of an upload made in test mode charges the image's price (once)."""
    remover = _local_engine()
    quote = pricing.quote(pricing.IMAGE, test=options.test)
    reservation = None
    # Claim the payment first (an atomic flip), so that two renders at once charge once.
    if not options.test and not upload.paid and _claim_payment(upload):
        try:
            reservation = _reserve(upload.user, quote.hold, _reference(upload.key))
        except RemovalError:
            _unclaim_payment(upload)
            raise
    try:
        cutout = restore_cutout(upload)
        result = remover.render(cutout, options)
    except BaseException:
        if reservation is not None:
            ledger.release(reservation)
            _unclaim_payment(upload)
        raise
    charged = Decimal(0)
    if reservation is not None:
        charged = _settle(reservation)
        Upload.objects.filter(pk=upload.pk).update(charged=F("charged") + charged)
    return Rendering(
        upload=upload,
        result=result,
        charged=charged,
        calculated=quote.calculated,
        credits=ledger.account_summary(upload.user).credits,
        test=options.test,
    )


def _claim_payment(upload: Upload) -> bool:
    claimed = Upload.objects.filter(pk=upload.pk, paid=False).update(paid=True) == 1
    upload.paid = True
    return claimed


def _unclaim_payment(upload: Upload) -> None:
    Upload.objects.filter(pk=upload.pk).update(paid=False)
    upload.paid = False


def _remember(pk: int, cutout: Cutout) -> None:
    with _cache_lock:
        _cache[pk] = cutout
        _cache.move_to_end(pk)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def restore_cutout(upload: Upload) -> Cutout:
    """The upload's Cutout as the engine's `analyse()` made it: the original decoded again
    (and scaled to the stored alpha's size when `max_pixels` had scaled it), with the alpha."""
    with _cache_lock:
        cutout = _cache.get(upload.pk)
        if cutout is not None:
            _cache.move_to_end(upload.pk)
            return cutout
    with upload.original.open("rb") as f:
        data = f.read()
    with upload.alpha.open("rb") as f, Image.open(io.BytesIO(f.read())) as im:
        alpha = np.asarray(im.convert("L")).copy()
    decoded = decode.decode(data)
    full_rgb, full_alpha = decoded.rgb, decoded.alpha
    full_h, full_w = full_rgb.shape[:2]
    work_h, work_w = alpha.shape
    extra: dict = {}
    if (work_w, work_h) != (full_w, full_h):
        rgb = cv2.resize(full_rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)
        extra["full_rgb"] = full_rgb
        extra["full_input_alpha"] = full_alpha
    else:
        rgb = full_rgb
    cutout = Cutout(
        rgb=rgb,
        alpha=alpha,
        full_size=(full_w, full_h),
        orientation=decoded.info.orientation,
        source_format=decoded.info.format,
        extra=extra,
    )
    _remember(upload.pk, cutout)
    return cutout


def _delete_files(upload: Upload) -> None:
    for field in (upload.original, upload.alpha):
        if field.name:
            field.storage.delete(field.name)


def purge_expired(now=None) -> int:
    """Delete the stored files and rows of uploads past their retention; returns how many."""
    now = now or timezone.now()
    count = 0
    for upload in Upload.objects.filter(expires_at__lte=now).iterator():
        pk = upload.pk
        _delete_files(upload)
        upload.delete()
        with _cache_lock:
            _cache.pop(pk, None)
        count += 1
    return count
