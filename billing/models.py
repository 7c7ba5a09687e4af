"""Credits: packs, one credit account per user, the append-only ledger, reservations, purchases.

Rules live in `billing/ledger.py` (the only code that writes ledger rows); models hold data,
constraints and small derived properties.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

CREDIT_DIGITS = {"max_digits": 18, "decimal_places": 6}


class CreditPack(models.Model):
    """What a customer can buy: credits for a price, usable for `validity_days` after purchase."""

    name = models.CharField(max_length=60, unique=True)
    credits = models.DecimalField(**CREDIT_DIGITS)
    # Integer minor units (cents), as Stripe counts them; converted only for display.
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    validity_days = models.PositiveIntegerField(default=365)
    active = models.BooleanField(default=True, help_text="Inactive packs are not offered.")
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "price_cents"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits__gt=0), name="billing_pack_credits_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_cents) / 100


class CreditAccount(models.Model):
    """A user's running balance. Changed only by `billing.ledger`, under `select_for_update`,
    in the same transaction as the ledger entry that explains the change."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_account"
    )
    balance = models.DecimalField(**CREDIT_DIGITS, default=Decimal(0))
    # Sum of open reservations: credits promised to requests still in progress.
    held = models.DecimalField(**CREDIT_DIGITS, default=Decimal(0))
    pack = models.ForeignKey(
        CreditPack, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    use_before = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance__gte=0), name="billing_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(held__gte=0) & models.Q(held__lte=models.F("balance")),
                name="billing_held_within_balance",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance})"

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


class LedgerEntry(models.Model):
    """One credit movement. Append-only: a correction is a new entry, never an edit."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase"
        GRANT = "grant"
        CHARGE = "charge"
        REFUND = "refund"
        EXPIRY = "expiry"

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Signed: positive adds credits, negative takes them.
    amount = models.DecimalField(**CREDIT_DIGITS)
    balance_after = models.DecimalField(**CREDIT_DIGITS)
    # Credits that were due but could not be taken (a reseller's loss when the upstream charged
    # more than was held; a refund larger than what was left). Never part of the balance.
    uncollected = models.DecimalField(**CREDIT_DIGITS, default=Decimal(0))
    # The idempotency key: the same (kind, reference) never moves credits twice.
    reference = models.CharField(max_length=200)
    # Why: request id, Stripe event id, upstream request, operator note.
    cause = models.CharField(max_length=500, blank=True)
    pack = models.ForeignKey(
        CreditPack, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "reference"], name="billing_entry_unique_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.reference})"


class Reservation(models.Model):
    """Credits held for a request in progress: settled into a charge, or released."""

    class Status(models.TextChoices):
        HELD = "held"
        SETTLED = "settled"
        RELEASED = "released"

    class Kind(models.TextChoices):
        CHARGE = "charge"
        # A batch's whole price, held at submission; its items reserve from it (`source`), and
        # `release_stale_reservations` never takes it (billing/ledger.py).
        BATCH_HOLD = "batch_hold"

    account = models.ForeignKey(
        CreditAccount, on_delete=models.PROTECT, related_name="reservations"
    )
    amount = models.DecimalField(**CREDIT_DIGITS)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHARGE)
    reference = models.CharField(max_length=200, unique=True)
    # The batch hold an item's reservation was taken from; released credits go back to it
    # while it is open.
    source = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="drawn"
    )
    cause = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.HELD)
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="reservation"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.reference}: {self.amount} {self.status}"


class Purchase(models.Model):
    """A paid Stripe Checkout session, and what its refunds took back."""

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="purchases")
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="purchases")
    credits = models.DecimalField(**CREDIT_DIGITS)
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    session_id = models.CharField(max_length=255, unique=True)
    payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    event_id = models.CharField(max_length=255)
    # Credits owed back by refunds so far; of these, `credits_unrecovered` could not be taken
    # because the customer had already spent them.
    credits_refunded = models.DecimalField(**CREDIT_DIGITS, default=Decimal(0))
    credits_unrecovered = models.DecimalField(**CREDIT_DIGITS, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.pack} for {self.account.user} ({self.session_id})"


class StripeEvent(models.Model):
    """Every Stripe webhook event handled, so a replay is acknowledged without effect."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    # What the handler did; rejected events moved nothing and wait for the operator.
    outcome = models.CharField(max_length=200, blank=True)
    rejected = models.BooleanField(default=False, db_index=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type})"
