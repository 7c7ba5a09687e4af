"""One removal through the API, paid for: the service the removal endpoints call.

Order (spec/pixian-v2.md, "Order of checks"): the caller has authenticated the user and parsed
the request; here the image is fetched when it is a URL and its header is probed (400s),
credits are reserved (402, skipped for test calls), the work runs outside any transaction,
and the reservation is settled on success or released on any failure, so a failed call
charges nothing and `charged` is always exactly the ledger entry's amount.
"""

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser

from billing import pricing
from billing.models import Reservation
from removal import active_engine, charging, errors, fetch, limits
from removal.calls import Call
from removal.engine import decode
from removal.engine.types import Cutout, RemovalContext, RemovalOptions, RemovalResult
from removal.errors import RemovalError
from removal.inputs import ImageInput


@dataclass(frozen=True)
class Removal:
    """A result and what it cost: `charged` is the ledger entry (0 for test calls, which
    carry `calculated`, the price of the same call in production)."""

    result: RemovalResult
    charged: Decimal
    calculated: Decimal
    test: bool


def image_bytes(image: ImageInput) -> bytes:
    """The input's bytes, downloading `image.url` under the fetcher's rules (3001-3005)."""
    if image.kind == "url":
        return fetch.fetch_image_url(
            image.url,
            allow_loopback=settings.CUTOUT_ALLOW_LOOPBACK_URLS,
            field=image.field or "image.url",
        )
    return image.data


def upstream_due(result: RemovalResult | Cutout) -> Decimal | None:
    """What the customer owes for an upstream's result or analysis (its charge × markup); None
    for the local engine, whose price is the hold. In reseller mode a result the local engine
    made instead (the fallback) costs `CUTOUT_CREDITS_PER_IMAGE`, at most the hold."""
    if result.upstream_credits is not None:
        return pricing.reseller_charge(result.upstream_credits)
    if pricing.reseller_mode():
        return pricing.quantize(settings.CUTOUT_CREDITS_PER_IMAGE)
    return None


def _checked(result: RemovalResult, require_foreground: bool) -> RemovalResult:
    if require_foreground and result.input_foreground.width == 0:
        raise RemovalError(errors.NO_FOREGROUND)
    return result


def remove_background(
    user: AbstractBaseUser,
    image: ImageInput,
    options: RemovalOptions,
    *,
    reference: str,
    product: str = pricing.IMAGE,
    context: RemovalContext | None = None,
    call: Call | None = None,
    bounds: decode.ImageBounds = decode.DEFAULT_BOUNDS,
    source: Reservation | None = None,
    require_foreground: bool = False,
    check: Callable[[decode.ImageInfo], None] | None = None,
) -> Removal:
    """Remove the background of `image` for `user`, charging `product`'s price on success.

    `reference` (the request id) identifies the charge in the ledger; `source` (a batch hold)
    pays instead of the balance (removal/charging.py); `call` (if any) gets the
    outcome for the call record; `bounds` are the wire format's limits on the image, checked
    from its header; `check(info)`, if given, refuses options that do not fit this image
    (Baidu's boxes). Test calls are free work: they hold a site-wide free slot from before the
    fetch and spend the account's free pixels before any decoding (4291/4292). Raises
    RemovalError: input errors (1xxx, 2xxx, 3xxx) before any credit is touched, 4020/4021 when
    the balance cannot pay, and whatever the engine raises (5041 past the engine's time-out),
    after releasing the hold. With `require_foreground` (remove.bg) a result with no
    foreground is a failure (2093), so it is not charged.
    """
    with limits.free_work() if options.test else nullcontext():
        data = image_bytes(image)
        info = decode.probe(data, bounds)
        if check is not None:
            check(info)
        if options.test:
            limits.spend_free_pixels(f"user:{user.pk}", info.width * info.height)
        if call is not None:
            call.test = options.test
            call.saw_input(data, info)
        paid = charging.run(
            user,
            pricing.quote(product, test=options.test),
            reference,
            lambda: _checked(
                active_engine.remove(data, options, context, free=options.test),
                require_foreground,
            ),
            due=upstream_due,
            call=call,
            source=source,
        )
    if call is not None:
        call.saw_result(paid.result)
    return Removal(
        result=paid.result, charged=paid.charged, calculated=paid.calculated, test=options.test
    )
