import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """One named credential pair; the secret itself is never stored, only its HMAC."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, default="default")
    key_id = models.CharField("API id", max_length=15, unique=True)
    secret_hmac = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.key_id} ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotentRequest(models.Model):
    """One `Idempotency-Key` a user sent to one endpoint, and the answer it got.

    The unique constraint is what makes concurrent duplicates safe: only the request whose
    insert wins does the work (and is charged); the others replay its answer or are told it
    is still in progress. See removal/idempotency.py.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotent_requests"
    )
    endpoint = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    # removal/fingerprint.py: the same key with another request is refused, not replayed.
    fingerprint = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    # The response's own headers (X-Credits-Charged, sizes, ...), replayed as they were.
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "endpoint", "key"], name="removal_idempotency_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key} ({self.state})"


def _new_public_id() -> str:
    return secrets.token_urlsafe(16)


def _upload_path(upload: "Upload", filename: str) -> str:
    return f"uploads/{upload.created_at or timezone.now():%Y/%m/%d}/{upload.public_id}/{filename}"


class Upload(models.Model):
    """An image sent through the website, with what re-rendering it needs: the original file
    and the alpha the engine found (an 8-bit PNG at processing size). Charged once, when
    first rendered outside test mode (`paid`); deleted by `purge_results` after `expires_at`.

    A visitor's try-out (removal/tryouts.py) has no user but the `visitor` token kept in the
    visitor's session; signing up in that session gives it to the new account.
    """

    public_id = models.CharField(max_length=32, unique=True, default=_new_public_id)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="uploads",
        null=True,
        blank=True,
    )
    visitor = models.CharField(max_length=64, blank=True, db_index=True)
    # The page's id for the file: a retried POST of the same file is not a second upload.
    key = models.CharField(max_length=64)
    filename = models.CharField(max_length=255, blank=True)
    original = models.FileField(upload_to=_upload_path, max_length=255)
    alpha = models.FileField(upload_to=_upload_path, max_length=255)
    # A JPEG of at most 1 MP for originals a browser cannot show (HEIC, TIFF, CMYK JPEG).
    preview = models.FileField(upload_to=_upload_path, max_length=255, blank=True)
    # The history's small JPEG, made on its first showing (removal/uploads.py).
    thumbnail = models.FileField(upload_to=_upload_path, max_length=255, blank=True)
    width = models.PositiveIntegerField(help_text="Oriented input width in pixels.")
    height = models.PositiveIntegerField(help_text="Oriented input height in pixels.")
    paid = models.BooleanField(default=False)
    charged = models.DecimalField(max_digits=18, decimal_places=6, default=Decimal(0))
    # The Pixian option fields of the last render (as sent), for the history's re-download.
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="removal_upload_unique_key"),
            models.UniqueConstraint(
                fields=["visitor", "key"],
                condition=models.Q(user__isnull=True),
                name="removal_upload_unique_visitor_key",
            ),
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | ~models.Q(visitor=""),
                name="removal_upload_has_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.filename or 'image'})"


class CallRecord(models.Model):
    """One authenticated call that reached a view, as its account and the operator see it:
    no image data. Written by removal/calls.py; kept CUTOUT_CALL_RECORD_RETENTION_DAYS.

    401s and 429s past the first of an account in a minute are counted in that first row's
    `repeats`, not recorded one by one.
    """

    class Channel(models.TextChoices):
        API = "api"
        WEBSITE = "website"
        BATCH = "batch"

    created_at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="call_records"
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="call_records"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    wire_format = models.CharField(max_length=20)
    endpoint = models.CharField(max_length=60)
    test = models.BooleanField(default=False)
    replay = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField()
    error_code = models.PositiveIntegerField(null=True, blank=True)
    credits = models.DecimalField(max_digits=18, decimal_places=6, default=Decimal(0))
    input_bytes = models.PositiveBigIntegerField(default=0)
    input_pixels = models.PositiveBigIntegerField(default=0)
    output_bytes = models.PositiveBigIntegerField(default=0)
    output_pixels = models.PositiveBigIntegerField(default=0)
    engine = models.CharField(max_length=20, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=32)
    repeats = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="removal_call_user_day")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.status} ({self.request_id})"


def _improvement_path(improvement: "Improvement", filename: str) -> str:
    return f"improve/{improvement.created_at or timezone.now():%Y/%m/%d}/{filename}"


class Improvement(models.Model):
    """An image a customer sent to remove.bg's `POST /v1.0/improve` for us to learn from:
    kept for the operator (in the admin) for CUTOUT_IMPROVE_RETENTION_DAYS, then deleted by
    `purge_results`. Never charged (removal/improvements.py)."""

    public_id = models.CharField(max_length=32, unique=True, default=_new_public_id)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="improvements"
    )
    image = models.FileField(upload_to=_improvement_path, max_length=255)
    filename = models.CharField(max_length=255, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="removal_improve_user_day")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.filename or 'unnamed'})"


class AccessToken(models.Model):
    """A Baidu-style OAuth access token for one API key (removal/tokens.py): stored only as its
    HMAC, like the key's secret; dead with its key, and deleted by `purge_results` once expired.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="access_tokens")
    token_hmac = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["api_key", "created_at"], name="removal_token_key_made")]

    def __str__(self) -> str:
        return f"token of {self.api_key.key_id} until {self.expires_at:%Y-%m-%d}"
