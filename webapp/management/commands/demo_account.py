import secrets
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand

from billing import ledger
from billing.formatting import format_credits
from removal import keys
from webapp.models import User

DEMO_EMAIL = "demo@cutout.local"
DEMO_CREDITS = Decimal(50)


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo account: a new password and API key, printed once;"
        " the first run also grants it 50 credits."
    )

    def handle(self, *args: str, **options: Any) -> None:
        password = secrets.token_urlsafe(12)
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(DEMO_EMAIL, password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        for old in user.api_keys.filter(name="demo", revoked_at__isnull=True):
            keys.revoke(old)
        key, secret = keys.create_key(user, "demo")
        # Once per account: the reference makes a re-run a no-op.
        ledger.grant(user, DEMO_CREDITS, f"demo:{user.pk}:initial", cause="demo account")
        balance = format_credits(ledger.account_summary(user).credits)
        self.stdout.write(
            "Demo account\n"
            f"  log in:     {DEMO_EMAIL} / {password}\n"
            f"  API id:     {key.key_id}\n"
            f"  API secret: {secret}\n"
            f"  credits:    {balance} (the first run grants {format_credits(DEMO_CREDITS)})\n"
        )
