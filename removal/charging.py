"""The one charging path: hold the price → do the work → settle on success, release on any
failure. The API, both website paths and the upstream's mirrored charge go through `run()`, so
a failed call never costs anything and what a call reports as charged is exactly its ledger
entry.

The hold is taken in a short transaction and the work runs outside any; `claim` lets a caller
take something in the hold's own transaction (the website's "this upload is paid for"), so
that of several concurrent callers exactly one holds and the others see the claim taken.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from billing import ledger, pricing
from billing.models import Reservation
from removal.calls import Call
from removal.errors import RemovalError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Claim(Protocol):
    """Something taken together with the hold, and given back if the work fails."""

    def take(self) -> bool:
        """Inside the hold's transaction: True to go on and hold, False when already taken
        (nothing is held, nothing charged)."""

    def give_back(self) -> None: ...


@dataclass(frozen=True)
class Charged(Generic[T]):
    """The work's result and what it cost: `charged` is the ledger entry's amount (0 when
    nothing was held: a test call, or a claim already taken)."""

    result: T
    charged: Decimal
    calculated: Decimal


def _hold(
    user: AbstractBaseUser,
    quote: pricing.Quote,
    reference: str,
    claim: Claim | None,
    source: Reservation | None,
) -> Reservation | None:
    if quote.is_free:
        return None
    try:
        if source is not None:
            return ledger.reserve_from_hold(source, quote.hold, reference, cause=reference)
        if claim is None:
            return ledger.reserve(user, quote.hold, reference, cause=f"request {reference}")
        with transaction.atomic():
            if not claim.take():
                return None
            return ledger.reserve(user, quote.hold, reference, cause=f"request {reference}")
    except ledger.InsufficientCreditsError as exc:  # CreditsLapsedError too (code 4021)
        raise RemovalError(exc.code, str(exc)) from None


def run(
    user: AbstractBaseUser,
    quote: pricing.Quote,
    reference: str,
    work: Callable[[], T],
    *,
    due: Callable[[T], Decimal | None] = lambda result: None,
    claim: Claim | None = None,
    call: Call | None = None,
    source: Reservation | None = None,
) -> Charged[T]:
    """Hold `quote.hold` for `user` under `reference` (unique), run `work()`, then charge.

    `due(result)` may name another amount than the hold (the upstream's charge × markup,
    which the ledger caps at the hold); `Decimal(0)` charges nothing and releases the hold.
    `source` (a batch hold, billing/ledger.py) pays instead of the balance: the item's hold
    is drawn from it, and a released item's credits go back to it.
    Raises RemovalError 4020/4021 when the balance cannot pay, and whatever `work` raises,
    after releasing the hold (and giving back the claim).
    """
    if call is not None:
        call.credits = Decimal(0)
    reservation = _hold(user, quote, reference, claim, source)
    try:
        result = work()
    except BaseException:
        if reservation is not None:
            ledger.release(reservation)
            if claim is not None:
                claim.give_back()
        raise
    charged = Decimal(0)
    if reservation is not None:
        amount = due(result)
        if amount == 0:
            ledger.release(reservation)
        else:
            try:
                charged = -ledger.settle(reservation, amount).amount
            except ledger.ReservationClosedError:
                # Released as stale while the work ran: nothing is held, so nothing is
                # charged, and the answer says so.
                logger.warning("%s finished after its reservation was released", reference)
    if call is not None:
        call.credits = charged
    return Charged(result=result, charged=charged, calculated=quote.calculated)
