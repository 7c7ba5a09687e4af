import json
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from billing import ledger
from billing.formatting import format_credits
from removal import keys
from webapp.models import User

DEMO_EMAIL = "demo@cutout.local"
DEMO_CREDITS = Decimal(50)
# Debug only: the demo's password and key, so that they survive `scripts/run` restarts.
CREDENTIALS_FILE = "demo-credentials.json"


def _saved(path: Path, user: User | None) -> dict | None:
    """The saved credentials, if they still log in and the key still works."""
    if user is None or not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        password, key_id, secret = saved["password"], saved["key_id"], saved["secret"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not user.check_password(password) or keys.verify(key_id, secret) is None:
        return None
    return saved


def _save(path: Path, credentials: dict) -> None:
    """Written owner-only (0600): it holds a password and an API secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(credentials, f)
    os.chmod(path, 0o600)


class Command(BaseCommand):
    help = (
        "Create the demo account and print its log-in and API key; the first run also grants"
        " it 50 credits. With DJANGO_DEBUG the credentials are kept in the data folder and"
        " printed again on later runs; otherwise each run makes new ones."
    )

    def handle(self, *args: str, **options: Any) -> None:
        path = Path(settings.DATA_DIR) / CREDENTIALS_FILE
        user = User.objects.filter(email=DEMO_EMAIL).first()
        credentials = _saved(path, user) if settings.DEBUG else None
        if credentials is None:
            credentials = self._fresh(user)
            if settings.DEBUG:
                _save(path, credentials)
        user = User.objects.get(email=DEMO_EMAIL)
        # Once per account: the reference makes a re-run a no-op.
        ledger.grant(user, DEMO_CREDITS, f"demo:{user.pk}:initial", cause="demo account")
        balance = format_credits(ledger.account_summary(user).credits)
        self.stdout.write(
            "Demo account\n"
            f"  log in:     {DEMO_EMAIL} / {credentials['password']}\n"
            f"  API id:     {credentials['key_id']}\n"
            f"  API secret: {credentials['secret']}\n"
            f"  credits:    {balance} (the first run grants {format_credits(DEMO_CREDITS)})\n"
        )

    def _fresh(self, user: User | None) -> dict:
        """A new password and key (older demo keys revoked)."""
        password = secrets.token_urlsafe(12)
        if user is None:
            user = User.objects.create_user(DEMO_EMAIL, password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        for old in user.api_keys.filter(name="demo", revoked_at__isnull=True):
            keys.revoke(old)
        key, secret = keys.create_key(user, "demo")
        return {"password": password, "key_id": key.key_id, "secret": secret}
