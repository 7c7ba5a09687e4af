"""Prices, in credits: the one place that knows what a call costs.

Local engine: a production image costs `CUTOUT_CREDITS_PER_IMAGE` (1), a remove.bg preview
`CUTOUT_CREDITS_PER_PREVIEW` (0.25). Test calls cost 0, but report the production price as
"calculated" (`X-Credits-Calculated`).

Reseller mode (`CUTOUT_ENGINE=pixian`): the customer pays the upstream's charge times
`CUTOUT_RESELLER_MARKUP`. Before the work, `reserve()` holds markup × one upstream credit (the
most an upstream call costs); afterwards `settle()` charges `reseller_charge(upstream's
X-Credits-Charged)`, which the ledger caps at the hold (any excess is the reseller's loss).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

CREDIT_QUANTUM = Decimal("0.000001")
# The most one upstream Pixian call charges, in upstream credits.
UPSTREAM_CREDITS_PER_IMAGE = Decimal(1)

IMAGE = "image"
PREVIEW = "preview"


@dataclass(frozen=True)
class Quote:
    """`hold`: what to `reserve()` before the work (0: nothing to reserve, a free test call).
    `calculated`: what a production call costs (sent as `X-Credits-Calculated` on test calls).
    """

    hold: Decimal
    calculated: Decimal

    @property
    def is_free(self) -> bool:
        return self.hold == 0


def quantize(value: Decimal) -> Decimal:
    """Round to the ledger's precision (6 decimal places, half up)."""
    return Decimal(value).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def reseller_mode() -> bool:
    return settings.CUTOUT_ENGINE == "pixian"


def reseller_charge(upstream_credits: Decimal | str) -> Decimal:
    """What the customer pays for an upstream charge: upstream credits × markup."""
    return quantize(Decimal(upstream_credits) * settings.CUTOUT_RESELLER_MARKUP)


def production_price(product: str = IMAGE) -> Decimal:
    """Credits for one successful production call of `product` (`"image"` or `"preview"`)."""
    if product not in {IMAGE, PREVIEW}:
        raise ValueError(f"unknown product {product!r}")
    if reseller_mode():
        return reseller_charge(UPSTREAM_CREDITS_PER_IMAGE)
    if product == PREVIEW:
        return quantize(settings.CUTOUT_CREDITS_PER_PREVIEW)
    return quantize(settings.CUTOUT_CREDITS_PER_IMAGE)


def quote(product: str = IMAGE, *, test: bool = False) -> Quote:
    """The price of one call; test calls are free but still report the production price."""
    price = production_price(product)
    return Quote(hold=Decimal(0) if test else price, calculated=price)
