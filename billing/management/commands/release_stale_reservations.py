from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import ledger
from billing.formatting import format_credits

# Longer than any request may live (the upstream deadline is 170 s), so a live request's
# hold is never taken away.
DEFAULT_MINUTES = 15


class Command(BaseCommand):
    help = "Return the credits held by requests that died between reserve and settle."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=DEFAULT_MINUTES,
            help=f"release holds older than this (default {DEFAULT_MINUTES})",
        )

    def handle(self, *args: str, older_than_minutes: float, **options: Any) -> None:
        if older_than_minutes < 0:
            raise CommandError("--older-than-minutes must not be negative")
        released = ledger.release_stale(timedelta(minutes=older_than_minutes))
        for reservation in released:
            self.stdout.write(
                f"released {reservation.reference}: {format_credits(reservation.amount)} credits"
            )
        self.stdout.write(f"{len(released)} stale reservation(s) released")
