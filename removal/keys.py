"""API credentials: creation, verification and revocation (formats in spec/settings.md)."""

import hashlib
import hmac
import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from removal.models import ApiKey

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 15
SECRET_LENGTH = 32
# A verified key's last use is written at most this often, so calls don't all write a row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hmac_key() -> bytes:
    return hashlib.sha256(b"cutout.api-secret:" + settings.SECRET_KEY.encode()).digest()


def hash_secret(secret: str) -> str:
    """HMAC-SHA256 of a secret (or Baidu token) under a key derived from DJANGO_SECRET_KEY."""
    return hmac.new(_hmac_key(), secret.encode(), hashlib.sha256).hexdigest()


def new_key_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_secret() -> str:
    # token_urlsafe's alphabet (A-Z a-z 0-9 - _) never contains ':'.
    return secrets.token_urlsafe(SECRET_LENGTH)[:SECRET_LENGTH]


def create_key(user: AbstractBaseUser, name: str = "default") -> tuple[ApiKey, str]:
    """Create a key pair for `user`; the secret is returned once and never stored."""
    secret = new_secret()
    while True:
        key_id = new_key_id()
        if not ApiKey.objects.filter(key_id=key_id).exists():
            break
    key = ApiKey.objects.create(
        user=user, name=name or "default", key_id=key_id, secret_hmac=hash_secret(secret)
    )
    return key, secret


def verify(key_id: str, secret: str) -> ApiKey | None:
    """The active key for this pair, or None; the comparison is constant-time."""
    key = ApiKey.objects.select_related("user").filter(key_id=key_id).first()
    expected = key.secret_hmac if key else hash_secret("no such key")
    if not hmac.compare_digest(expected, hash_secret(secret)) or key is None:
        return None
    if not key.is_active or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def find(key_id: str) -> ApiKey | None:
    """The key with this id, active or not (for attributing a failed attempt)."""
    return ApiKey.objects.select_related("user").filter(key_id=key_id).first()


def revoke(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
