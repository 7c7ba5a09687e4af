"""Batches: many removals submitted at once, worked by queue workers, announced by a webhook.

Rules live in batches/submission.py (what a batch may be), batches/work.py (leases, retries,
money per item) and batches/webhooks.py (signing, delivery); models hold data and constraints.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from billing.models import CREDIT_DIGITS, Reservation


class Batch(models.Model):
    class State(models.TextChoices):
        # Multipart batches wait here for more files and `POST …/start`.
        OPEN = "open"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    # The Pixian fields every item starts from (an item's own options override them).
    options = models.JSONField(default=dict)
    test = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=2000, blank=True)
    # Where the batch's status is read (absolute, as the client reached this server).
    status_url = models.URLField(max_length=2000, blank=True)
    # The whole price, held at start; items reserve from it (billing/ledger.py).
    hold = models.OneToOneField(
        Reservation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.id} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in {self.State.COMPLETED, self.State.FAILED, self.State.CANCELLED}


class BatchItem(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    number = models.PositiveIntegerField()
    # Either a URL still to fetch, or the stored bytes of an upload / base64 (default_storage).
    url = models.URLField(max_length=2000, blank=True)
    input_name = models.CharField(max_length=300, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    options = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # Every start by a worker; `failures` only those that ended with the hold given back, so
    # the item's ledger reference (batch:<id>:<n>:<failures>) is the same after a worker died.
    attempts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100, blank=True)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    credits = models.DecimalField(**CREDIT_DIGITS, default=Decimal(0))
    result_name = models.CharField(max_length=300, blank=True)
    result_content_type = models.CharField(max_length=100, blank=True)
    result_headers = models.JSONField(default=dict)
    result_bytes = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="batches_item_number"),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.batch_id}/{self.number} ({self.state})"


class AccountTurn(models.Model):
    """When each account last had an item started: workers serve the longest-waiting account
    first (round-robin across accounts)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    served_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} served {self.served_at}"


class WorkerHeartbeat(models.Model):
    """Each worker process's last sign of life, for staff (the admin), never public."""

    worker = models.CharField(max_length=100, primary_key=True)
    beat_at = models.DateTimeField()
    item = models.ForeignKey(
        BatchItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.worker


class WebhookSecret(models.Model):
    """The per-account key that signs webhooks (Standard Webhooks: `whsec_` + base64)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"webhook secret of {self.user_id}"


class WebhookDelivery(models.Model):
    """One attempt to deliver a batch's event; `message_id` is the same for every attempt."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=30)
    message_id = models.CharField(max_length=60)
    attempt = models.PositiveIntegerField()
    status = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    delivered = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["batch", "attempt"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} #{self.attempt} ({self.status or self.error})"
