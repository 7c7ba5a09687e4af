from typing import Any

from django.core.management.base import BaseCommand

from removal import calls, idempotency, tokens, uploads


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


class Command(BaseCommand):
    help = (
        "Delete what is past its retention: the website's stored originals and alphas, the "
        "API's stored answers to Idempotency-Key requests, the call records and expired Baidu "
        "access tokens."
    )

    def handle(self, *args: str, **options: Any) -> None:
        count = uploads.purge_expired()
        answers = idempotency.purge_expired()
        records = calls.purge_expired()
        expired = tokens.purge_expired()
        self.stdout.write(
            f"Purged {_plural(count, 'upload')}, {_plural(answers, 'stored API answer')}, "
            f"{_plural(records, 'call record')} and {_plural(expired, 'expired access token')}."
        )
