from typing import Any

from django.core.management.base import BaseCommand

from batches import results
from removal import calls, idempotency, improvements, tokens, uploads


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


class Command(BaseCommand):
    help = (
        "Delete what is past its retention: the website's stored originals and alphas, the "
        "API's stored answers to Idempotency-Key requests, the call records, the images sent "
        "to /v1.0/improve, expired Baidu access tokens, and the inputs and results of "
        "finished batches."
    )

    def handle(self, *args: str, **options: Any) -> None:
        count = uploads.purge_expired()
        answers = idempotency.purge_expired()
        records = calls.purge_expired()
        improved = improvements.purge_expired()
        expired = tokens.purge_expired()
        batch_results = results.purge_expired()
        self.stdout.write(
            f"Purged {_plural(count, 'upload')}, {_plural(answers, 'stored API answer')}, "
            f"{_plural(records, 'call record')}, {_plural(improved, 'improvement image')}, "
            f"{_plural(expired, 'expired access token')} and "
            f"{_plural(batch_results, 'batch result')}."
        )
