"""One removal through the API, paid for: the service the removal endpoints call.

Order (spec/pixian-v2.md, "Order of checks"): the caller has authenticated the user and parsed
the request; here the image is fetched when it is a URL and its header is probed (400s),
credits are reserved (402, skipped for test calls), the work runs outside any transaction,
and the reservation is settled on success or released on any failure, so a failed call
charges nothing and `charged` is always exactly the ledger entry's amount.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from billing import ledger, pricing
from removal import active_engine, fetch
from removal.engine import decode
from removal.engine.types import RemovalOptions, RemovalResult
from removal.errors import RemovalError
from removal.inputs import ImageInput

logger = logging.getLogger(__name__)


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
        return fetch.fetch_image_url(image.url, allow_loopback=settings.CUTOUT_ALLOW_LOOPBACK_URLS)
    return image.data


def _reserve(user, amount: Decimal, reference: str) -> "ledger.Reservation":
    try:
        return ledger.reserve(user, amount, reference, cause=f"request {reference}")
    except ledger.InsufficientCreditsError as exc:  # CreditsLapsedError too (code 4021)
        raise RemovalError(exc.code, str(exc)) from None


def remove_background(
    user,
    image: ImageInput,
    options: RemovalOptions,
    *,
    reference: str,
    product: str = pricing.IMAGE,
) -> Removal:
    """Remove the background of `image` for `user`, charging `product`'s price on success.

    `reference` (the request id) identifies the charge in the ledger. Raises RemovalError:
    input errors (1xxx, 3xxx) before any credit is touched, 4020/4021 when the balance
    cannot pay, and whatever the engine raises, after releasing the reservation.
    """
    data = image_bytes(image)
    decode.probe(data)
    quote = pricing.quote(product, test=options.test)
    reservation = None if quote.is_free else _reserve(user, quote.hold, reference)
    try:
        result = active_engine.get_remover().remove(data, options)
    except BaseException:
        if reservation is not None:
            ledger.release(reservation)
        raise
    charged = Decimal(0)
    if reservation is not None:
        due = None
        if result.upstream_credits is not None:
            due = pricing.reseller_charge(result.upstream_credits)
        try:
            charged = -ledger.settle(reservation, due).amount
        except ledger.ReservationClosedError:
            # Released as stale while the work ran: nothing is held, so nothing is charged,
            # and the header says so.
            logger.warning("request %s finished after its reservation was released", reference)
    return Removal(result=result, charged=charged, calculated=quote.calculated, test=options.test)
