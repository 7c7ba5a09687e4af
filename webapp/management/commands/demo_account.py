import secrets

from django.core.management.base import BaseCommand

from removal import keys
from webapp.models import User

DEMO_EMAIL = "demo@cutout.local"


class Command(BaseCommand):
    help = "Create (or refresh) the demo account: a new password and API key, printed once."

    def handle(self, *args, **options):
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
        self.stdout.write(
            "Demo account\n"
            f"  log in:     {DEMO_EMAIL} / {password}\n"
            f"  API id:     {key.key_id}\n"
            f"  API secret: {secret}\n"
        )
