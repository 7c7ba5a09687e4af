from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing import ledger
from billing.models import CreditAccount


class Command(BaseCommand):
    help = (
        "Check every credit account: balance = sum of its entries = last entry's balance after,"
        " held = its open reservations. Exits non-zero on any mismatch."
    )

    def handle(self, *args: str, **options: Any) -> None:
        problems = ledger.check()
        for problem in problems:
            self.stderr.write(f"{problem.account.user}: {problem.message}")
        if problems:
            raise CommandError(f"{len(problems)} ledger problem(s)")
        self.stdout.write(f"ledger OK: {CreditAccount.objects.count()} account(s) balanced")
