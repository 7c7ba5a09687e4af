from django.conf import settings
from django.db import models


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
