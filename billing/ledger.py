"""Every credit movement. The only code that writes ledger rows or changes a balance.

Invariants (checked by `manage.py check_ledger`):
- an account's `balance` equals the sum of its entries' amounts, and never goes below zero;
- its `held` equals the sum of its open reservations, and never exceeds the balance;
- the same (kind, reference) never moves credits twice: a unique constraint enforces it,
  the insert runs in a savepoint and a duplicate returns the first result.

Each function is one short transaction that locks the account row (`select_for_update`) first.
Slow work (inference, upstream calls, Stripe) belongs between `reserve()` and `settle()` /
`release()`, outside any transaction.

Usage by the APIs:

    quote = pricing.quote("image", test=is_test)
    reservation = None if quote.is_free else ledger.reserve(user, quote.hold, request_id)
    try:
        result = do_the_work()
    except BaseException:
        if reservation: ledger.release(reservation)
        raise
    entry = ledger.settle(reservation) if reservation else None
    charged = -entry.amount if entry else Decimal(0)     # X-Credits-Charged
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from billing.formatting import format_credits, format_time
from billing.models import CreditAccount, CreditPack, LedgerEntry, Purchase, Reservation
from billing.pricing import quantize

logger = logging.getLogger(__name__)

Kind = LedgerEntry.Kind


class CreditsError(Exception):
    """Base for refusals; `code` is the API's error code (removal/errors.py)."""

    code = 4020


class InsufficientCreditsError(CreditsError):
    """Not enough available credits for the amount asked (API code 4020)."""

    code = 4020

    def __init__(self, needed: Decimal, available: Decimal, message: str | None = None) -> None:
        self.needed = needed
        self.available = available
        super().__init__(
            message
            or f"Not enough credits: this call needs {format_credits(needed)}, "
            f"{format_credits(available)} available."
        )


class CreditsLapsedError(InsufficientCreditsError):
    """The account's `useBefore` has passed (API code 4021). A subclass of
    InsufficientCreditsError, so one `except` catches both; tell them apart by `code`."""

    code = 4021

    def __init__(self, needed: Decimal, use_before: datetime) -> None:
        self.use_before = use_before
        super().__init__(
            needed,
            Decimal(0),
            f"Your credits lapsed at {format_time(use_before)}; buy a credit pack to continue.",
        )


class ReservationClosedError(CreditsError):
    """`settle()` on a reservation that was already released (e.g. by
    `release_stale_reservations`): nothing is held any more, so nothing is charged."""


@dataclass(frozen=True)
class AccountSummary:
    """What GET /api/v2/account reports. `credits` is what the next calls can spend
    (the balance minus credits held for requests in progress)."""

    credit_pack: str
    state: str
    use_before: datetime | None
    credits: Decimal
    balance: Decimal
    held: Decimal

    @property
    def plain_state(self) -> str:
        """The state in plain words for the account's pages (the API keeps Pixian's
        "active"/"dormant")."""
        if self.state == "active":
            return "Active: your credits are ready to use."
        if self.use_before is None:
            return "No credits yet: test mode is free; buy credits for results without a watermark."
        if self.use_before <= timezone.now():
            return "Your credits have lapsed: buy credits to go on (test mode stays free)."
        return "No credits left: buy more to go on (test mode stays free)."


def _check_amount(amount: Decimal | int | str, *, allow_zero: bool = False) -> Decimal:
    value = quantize(Decimal(amount))
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"amount must be positive, not {amount!r}")
    return value


def _locked_account(user: AbstractBaseUser) -> CreditAccount:
    """The user's account row, created on first use, locked until the transaction ends."""
    try:
        return CreditAccount.objects.select_for_update().get(user=user)
    except CreditAccount.DoesNotExist:
        # get_or_create retries the read when a concurrent insert wins the unique constraint.
        CreditAccount.objects.get_or_create(user=user)
        return CreditAccount.objects.select_for_update().get(user=user)


def _is_lapsed(account: CreditAccount, now: datetime) -> bool:
    return account.use_before is not None and account.use_before <= now


def _refusal(
    account: CreditAccount, amount: Decimal, now: datetime
) -> InsufficientCreditsError | None:
    """Why `account` cannot hold `amount` now (lapsed, or too few credits), or None."""
    if _is_lapsed(account, now):
        return CreditsLapsedError(amount, account.use_before)
    if account.available < amount:
        return InsufficientCreditsError(amount, account.available)
    return None


def check_affordable(user: AbstractBaseUser, amount: Decimal) -> None:
    """Raise what `reserve` would raise for `amount`, holding nothing: a read, for work that
    is done before its price is held (the website's re-render)."""
    account = CreditAccount.objects.filter(user=user).first()
    if account is None:
        raise InsufficientCreditsError(_check_amount(amount), Decimal(0))
    refusal = _refusal(account, _check_amount(amount), timezone.now())
    if refusal is not None:
        raise refusal


def _write(
    account: CreditAccount,
    kind: str,
    amount: Decimal,
    reference: str,
    cause: str = "",
    *,
    pack: CreditPack | None = None,
    uncollected: Decimal = Decimal(0),
) -> LedgerEntry | None:
    """Insert one entry and move the (locked, unsaved) account's balance with it.

    Returns None when (kind, reference) exists already: the caller answers with the first
    result. The caller saves the account in the same transaction.
    """
    balance_after = account.balance + amount
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                account=account,
                kind=kind,
                amount=amount,
                balance_after=balance_after,
                uncollected=uncollected,
                reference=reference,
                cause=cause[:500],
                pack=pack,
            )
    except IntegrityError:
        return None
    account.balance = balance_after
    return entry


def _existing(kind: str, reference: str, account: CreditAccount) -> LedgerEntry:
    entry = LedgerEntry.objects.get(kind=kind, reference=reference)
    if entry.account_id != account.pk:
        logger.error(
            "ledger reference %s:%s belongs to account %s, not %s",
            kind,
            reference,
            entry.account_id,
            account.pk,
        )
    return entry


def _expire_if_lapsed(account: CreditAccount, now: datetime) -> LedgerEntry | None:
    """Lazy expiry: once `useBefore` has passed, the spendable credits go (an expiry entry).
    Credits held for requests in progress stay until those settle or release."""
    if not _is_lapsed(account, now) or account.available <= 0:
        return None
    entry = _write(
        account,
        Kind.EXPIRY,
        -account.available,
        f"expiry:{account.pk}:{uuid.uuid4().hex}",
        f"useBefore {format_time(account.use_before)} passed",
    )
    account.save(update_fields=["balance", "updated_at"])
    return entry


def close(user: AbstractBaseUser) -> LedgerEntry | None:
    """The account is being deleted: its spendable credits go, in one expiry entry (so the
    books still balance and the ledger stays as the accounting record), and `useBefore` is
    set to now. Credits held for requests in progress settle or release as usual. Returns
    the entry, or None when nothing was left to forfeit (or there is no credit account)."""
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().filter(user=user).first()
        if account is None:
            return None
        now = timezone.now()
        account.use_before = now
        entry = None
        if account.available > 0:
            entry = _write(
                account,
                Kind.EXPIRY,
                -account.available,
                f"closed:{account.pk}:{uuid.uuid4().hex}",
                "account deleted by its owner",
            )
        account.save(update_fields=["balance", "use_before", "updated_at"])
    return entry


def _extend_validity(
    account: CreditAccount, now: datetime, days: int, pack: CreditPack | None
) -> None:
    """`useBefore` moves to the later of its value and now + `days`; a pack becomes current."""
    until = now + timedelta(days=days)
    if account.use_before is None or account.use_before < until:
        account.use_before = until
    if pack is not None:
        account.pack = pack


def reserve(
    user: AbstractBaseUser,
    amount: Decimal,
    reference: str,
    *,
    kind: str = Kind.CHARGE,
    cause: str = "",
) -> Reservation:
    """Hold `amount` (> 0) credits for the request identified by `reference` (unique).

    A repeated `reference` returns the first reservation, holding nothing more.
    Raises CreditsLapsedError (4021) when `useBefore` has passed, InsufficientCreditsError
    (4020) when fewer than `amount` credits are available; ValueError for amount <= 0 (free
    calls need no reservation).
    """
    if kind != Kind.CHARGE:
        raise ValueError(f"reservations are settled as charges, not {kind!r}")
    return _reserve(user, amount, reference, Reservation.Kind.CHARGE, cause)


def hold_batch(
    user: AbstractBaseUser, amount: Decimal, reference: str, *, cause: str = ""
) -> Reservation:
    """Hold a batch's whole price as one reservation of its own kind (never settled itself:
    its items reserve from it with `reserve_from_hold`, and `release()` gives back the rest).
    `release_stale` never takes it. Raises as `reserve()` does; a repeated `reference`
    returns the first hold."""
    return _reserve(user, amount, reference, Reservation.Kind.BATCH_HOLD, cause)


def _reserve(
    user: AbstractBaseUser, amount: Decimal, reference: str, kind: str, cause: str
) -> Reservation:
    amount = _check_amount(amount)
    with transaction.atomic():
        account = _locked_account(user)
        now = timezone.now()
        _expire_if_lapsed(account, now)
        refusal = _refusal(account, amount, now)
        if refusal is not None:
            # A replay of a request that already holds (or held) credits is not a new call.
            replay = Reservation.objects.filter(reference=reference, account=account).first()
            if replay is not None:
                return replay
        else:
            try:
                with transaction.atomic():
                    reservation = Reservation.objects.create(
                        account=account,
                        amount=amount,
                        kind=kind,
                        reference=reference,
                        cause=cause[:500],
                    )
            except IntegrityError:
                reservation = Reservation.objects.get(reference=reference)
                if reservation.account_id != account.pk:
                    raise ValueError(
                        f"reservation reference {reference!r} belongs to another account"
                    ) from None
                return reservation
            account.held += amount
            account.save(update_fields=["held", "updated_at"])
            return reservation
    # Raised after the commit, so a lazy expiry written above is kept.
    raise refusal


def reserve_from_hold(
    hold: Reservation, amount: Decimal, reference: str, *, cause: str = ""
) -> Reservation:
    """Move `amount` of an open batch hold into a charge reservation for one item.

    The account's `held` does not change (the credits stay held, now for the item). A
    repeated `reference` returns the first reservation, whatever its status, so an item
    picked up again after its worker died is charged at most once. Raises
    InsufficientCreditsError (4020) when the hold is closed or has less than `amount` left.
    """
    amount = _check_amount(amount)
    with transaction.atomic():
        CreditAccount.objects.select_for_update().get(pk=hold.account_id)
        current = Reservation.objects.select_for_update().get(pk=hold.pk)
        if current.kind != Reservation.Kind.BATCH_HOLD:
            raise ValueError(f"{current.reference} is not a batch hold")
        existing = Reservation.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.source_id != current.pk:
                raise ValueError(f"reservation reference {reference!r} belongs to another hold")
            return existing
        if current.status != Reservation.Status.HELD or current.amount < amount:
            left = current.amount if current.status == Reservation.Status.HELD else Decimal(0)
            raise InsufficientCreditsError(
                amount, left, f"The batch hold {current.reference} has {format_credits(left)} left."
            )
        current.amount -= amount
        current.save(update_fields=["amount"])
        reservation = Reservation.objects.create(
            account_id=current.account_id,
            amount=amount,
            kind=Reservation.Kind.CHARGE,
            reference=reference,
            cause=cause[:500],
            source=current,
        )
    hold.amount = current.amount
    return reservation


def settle(
    reservation: Reservation, amount: Decimal | None = None, *, cause: str = ""
) -> LedgerEntry:
    """Turn a reservation into a charge entry (negative amount) and return it.

    `amount` None charges the held amount; otherwise `amount` (e.g. the upstream charge ×
    markup) is charged up to the hold, and any excess is recorded as `uncollected` (the
    reseller's loss). Settling twice returns the first entry. Raises ReservationClosedError
    if the reservation was released.
    """
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(pk=reservation.account_id)
        current = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if current.status == Reservation.Status.SETTLED:
            return current.entry
        if current.status == Reservation.Status.RELEASED:
            raise ReservationClosedError(f"reservation {current.reference} was released")
        if current.kind == Reservation.Kind.BATCH_HOLD:
            raise ValueError("a batch hold is not settled: its items are")
        due = current.amount if amount is None else _check_amount(amount, allow_zero=True)
        charged = min(due, current.amount)
        uncollected = due - charged
        account.held -= current.amount
        causes = "; ".join(part for part in (current.cause, cause) if part)
        entry = _write(
            account, current.kind, -charged, current.reference, causes, uncollected=uncollected
        )
        if entry is None:
            raise IntegrityError(f"a {current.kind} entry {current.reference} already exists")
        account.save(update_fields=["balance", "held", "updated_at"])
        current.status = Reservation.Status.SETTLED
        current.entry = entry
        current.closed_at = timezone.now()
        current.save(update_fields=["status", "entry", "closed_at"])
    if uncollected:
        logger.warning(
            "charge %s: %s credits due but only %s held; %s uncollected (reseller's loss)",
            current.reference,
            due,
            current.amount,
            uncollected,
        )
    reservation.status, reservation.entry, reservation.closed_at = (
        current.status,
        entry,
        current.closed_at,
    )
    return entry


def release(reservation: Reservation) -> bool:
    """Return the held credits of a failed request. True if it was still held; releasing a
    settled or released reservation changes nothing.

    An item's reservation drawn from a batch hold that is still open goes back to that hold
    (the item may be tried again); otherwise the credits become available again.
    """
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(pk=reservation.account_id)
        current = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if current.status != Reservation.Status.HELD:
            return False
        source = (
            Reservation.objects.select_for_update().get(pk=current.source_id)
            if current.source_id
            else None
        )
        if source is not None and source.status == Reservation.Status.HELD:
            source.amount += current.amount
            source.save(update_fields=["amount"])
        else:
            account.held -= current.amount
            account.save(update_fields=["held", "updated_at"])
        current.status = Reservation.Status.RELEASED
        current.closed_at = timezone.now()
        current.save(update_fields=["status", "closed_at"])
    reservation.status, reservation.closed_at = current.status, current.closed_at
    return True


def stale_reservations(older_than: timedelta) -> QuerySet[Reservation]:
    """Reservations still held after `older_than`: their requests died between reserve and
    settle (a crash, a killed worker).

    Never a batch hold, nor an item's reservation while its batch hold is open: a batch ends
    by itself (its items' leases bring back what a dead worker held) and then releases both.
    """
    cutoff = timezone.now() - older_than
    return (
        Reservation.objects.filter(status=Reservation.Status.HELD, created_at__lt=cutoff)
        .exclude(kind=Reservation.Kind.BATCH_HOLD)
        .exclude(source__status=Reservation.Status.HELD)
    )


def release_stale(older_than: timedelta) -> list[Reservation]:
    """Release every reservation held for longer than `older_than`; returns those released."""
    released = []
    for reservation in stale_reservations(older_than).order_by("created_at"):
        if release(reservation):
            released.append(reservation)
            logger.warning(
                "released stale reservation %s (%s credits, held since %s)",
                reservation.reference,
                reservation.amount,
                reservation.created_at,
            )
    return released


def grant(
    user: AbstractBaseUser,
    amount: Decimal,
    reference: str,
    pack: CreditPack | None = None,
    *,
    cause: str = "",
) -> LedgerEntry:
    """Give `amount` (> 0) free credits (an operator grant, a demo account, a test persona).

    `useBefore` moves to at least now + the pack's validity, or + CUTOUT_GRANT_VALIDITY_DAYS
    without a pack; a pack becomes the account's current pack. The same `reference` grants
    once; a repeat returns the first entry.
    """
    return grant_once(user, amount, reference, pack, cause=cause)[0]


def grant_once(
    user: AbstractBaseUser,
    amount: Decimal,
    reference: str,
    pack: CreditPack | None = None,
    *,
    cause: str = "",
) -> tuple[LedgerEntry, bool]:
    """`grant()`, also saying whether this call granted: (the first entry, False) when the
    reference was used before, whichever account and amount it was for."""
    amount = _check_amount(amount)
    with transaction.atomic():
        account = _locked_account(user)
        now = timezone.now()
        _expire_if_lapsed(account, now)
        entry = _write(account, Kind.GRANT, amount, reference, cause, pack=pack)
        if entry is None:
            return _existing(Kind.GRANT, reference, account), False
        days = pack.validity_days if pack else settings.CUTOUT_GRANT_VALIDITY_DAYS
        _extend_validity(account, now, days, pack)
        account.save()
    return entry, True


def purchase(
    user: AbstractBaseUser,
    pack: CreditPack,
    *,
    session_id: str,
    event_id: str,
    amount_cents: int,
    currency: str,
    payment_intent: str = "",
    credits: Decimal | None = None,
) -> tuple[Purchase, bool]:
    """Record a paid Checkout session and add its credits (the pack's, unless `credits` says
    what the customer was offered). `useBefore` moves to the later of its value and now + the
    pack's validity. Keyed on the session id: returns (purchase, False) for a session already
    granted, whichever event announced it.
    """
    amount = _check_amount(pack.credits if credits is None else credits)
    with transaction.atomic():
        account = _locked_account(user)
        now = timezone.now()
        _expire_if_lapsed(account, now)
        try:
            with transaction.atomic():
                record = Purchase.objects.create(
                    account=account,
                    pack=pack,
                    credits=amount,
                    amount_cents=amount_cents,
                    currency=currency.lower(),
                    session_id=session_id,
                    payment_intent=payment_intent or "",
                    event_id=event_id,
                )
        except IntegrityError:
            return Purchase.objects.get(session_id=session_id), False
        entry = _write(
            account,
            Kind.PURCHASE,
            amount,
            f"checkout:{session_id}",
            f"stripe {event_id}",
            pack=pack,
        )
        if entry is None:
            raise IntegrityError(f"a purchase entry for session {session_id} already exists")
        _extend_validity(account, now, pack.validity_days, pack)
        account.save()
    return record, True


def refund(
    record: Purchase, refunded_cents: int, *, reference: str, cause: str = ""
) -> LedgerEntry | None:
    """Take back the credits of a (partly) refunded purchase.

    `refunded_cents` is the charge's cumulative refunded amount (Stripe's `amount_refunded`),
    so repeated or partial refund events each take only what is newly owed. What the customer
    has already spent cannot be taken (the balance never goes below zero): that part is
    recorded as the entry's `uncollected` and on the purchase. Returns None when nothing new
    is owed; a repeated `reference` returns the first entry.
    """
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(pk=record.account_id)
        current = Purchase.objects.select_for_update().get(pk=record.pk)
        _expire_if_lapsed(account, timezone.now())
        if refunded_cents <= 0:
            owed_total = Decimal(0)
        elif current.amount_cents <= 0 or refunded_cents >= current.amount_cents:
            owed_total = current.credits
        else:
            owed_total = quantize(current.credits * refunded_cents / current.amount_cents)
        due = owed_total - current.credits_refunded
        if due <= 0:
            return None
        taken = min(due, max(account.available, Decimal(0)))
        entry = _write(
            account,
            Kind.REFUND,
            -taken,
            reference,
            cause,
            pack=current.pack,
            uncollected=due - taken,
        )
        if entry is None:
            return _existing(Kind.REFUND, reference, account)
        account.save(update_fields=["balance", "updated_at"])
        current.credits_refunded += due
        current.credits_unrecovered += due - taken
        current.save(update_fields=["credits_refunded", "credits_unrecovered"])
    if due > taken:
        logger.warning(
            "refund %s: %s credits owed, %s already spent and not recovered",
            reference,
            due,
            due - taken,
        )
    return entry


def _account_for_reading(user: AbstractBaseUser) -> CreditAccount | None:
    """The account as it is now; a lapse is applied (under the row lock) before reading."""
    account = CreditAccount.objects.filter(user=user).select_related("pack").first()
    if account is None:
        return None
    now = timezone.now()
    if _is_lapsed(account, now) and account.available > 0:
        with transaction.atomic():
            account = CreditAccount.objects.select_for_update().get(pk=account.pk)
            _expire_if_lapsed(account, now)
    return account


def balance(user: AbstractBaseUser) -> Decimal:
    """The ledger balance (the sum of the entries), after any lazy expiry. Includes credits
    held for requests in progress; `account_summary(user).credits` excludes them."""
    account = _account_for_reading(user)
    return account.balance if account else Decimal(0)


def account_summary(user: AbstractBaseUser) -> AccountSummary:
    """The account as GET /api/v2/account reports it: `state` is "active" while the pack is
    valid (`useBefore` in the future) and credits remain, else "dormant"."""
    account = _account_for_reading(user)
    if account is None:
        return AccountSummary("none", "dormant", None, Decimal(0), Decimal(0), Decimal(0))
    now = timezone.now()
    credits = max(account.available, Decimal(0))
    active = not _is_lapsed(account, now) and account.use_before is not None and credits > 0
    pack = account.pack
    return AccountSummary(
        credit_pack=pack.name if pack else "none",
        state="active" if active else "dormant",
        use_before=account.use_before,
        credits=credits,
        balance=account.balance,
        held=account.held,
    )


def entries(user: AbstractBaseUser) -> QuerySet[LedgerEntry]:
    """The user's ledger, newest first."""
    return LedgerEntry.objects.filter(account__user=user).select_related("pack")


@dataclass(frozen=True)
class LedgerProblem:
    account: CreditAccount
    message: str


def check() -> list[LedgerProblem]:
    """Every account's balance equals the sum of its entries and the last entry's
    `balance_after`; `held` equals its open reservations. Returns the problems found."""
    problems = []
    for account in CreditAccount.objects.select_related("user").order_by("pk").iterator():
        total = account.entries.aggregate(total=Sum("amount"))["total"] or Decimal(0)
        if quantize(total) != account.balance:
            problems.append(
                LedgerProblem(account, f"balance {account.balance} != sum of entries {total}")
            )
        last = account.entries.order_by("-id").first()
        if last is not None and last.balance_after != account.balance:
            problems.append(
                LedgerProblem(
                    account,
                    f"balance {account.balance} != last entry's balance_after "
                    f"{last.balance_after} ({last.reference})",
                )
            )
        held = account.reservations.filter(status=Reservation.Status.HELD).aggregate(
            total=Sum("amount")
        )["total"] or Decimal(0)
        if quantize(held) != account.held:
            problems.append(
                LedgerProblem(account, f"held {account.held} != open reservations {held}")
            )
        if account.balance < 0 or account.held < 0 or account.held > account.balance:
            problems.append(
                LedgerProblem(
                    account, f"balance {account.balance} / held {account.held} out of range"
                )
            )
    return problems
