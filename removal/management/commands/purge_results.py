from typing import Any

from django.core.management.base import BaseCommand

from removal import idempotency, uploads


class Command(BaseCommand):
    help = (
        "Delete what is past its retention: the website's stored originals and alphas, and "
        "the API's stored answers to Idempotency-Key requests."
    )

    def handle(self, *args: str, **options: Any) -> None:
        count = uploads.purge_expired()
        answers = idempotency.purge_expired()
        self.stdout.write(
            f"Purged {count} upload{'s' if count != 1 else ''} "
            f"and {answers} stored API answer{'s' if answers != 1 else ''}."
        )
