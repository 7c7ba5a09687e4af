from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from removal import keys
from webapp.models import User


class Command(BaseCommand):
    help = "Create an API key pair for an account and print exactly 'API_ID API_SECRET'."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--create-user", action="store_true", help="create the account if missing"
        )
        parser.add_argument("--name", default="default", help="a label for the key")

    def handle(self, *args: str, email: str, create_user: bool, name: str, **options: Any) -> None:
        email = email.strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            if not create_user:
                raise CommandError(f"no account for {email}; pass --create-user to create it")
            user = User.objects.create_user(email)
        key, secret = keys.create_key(user, name)
        self.stdout.write(f"{key.key_id} {secret}")
