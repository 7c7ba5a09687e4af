from typing import Any

from django.core.management.base import BaseCommand

from removal.upstream import health


class Command(BaseCommand):
    help = (
        "Reseller mode: the upstream's health as every process sees it (last success, last "
        "error, 429 backoff, remaining upstream credits) and the last hour's calls."
    )

    def handle(self, *args: str, **options: Any) -> None:
        for label, value in health.lines(health.current(), health.recent_calls()):
            self.stdout.write(f"{label}: {value}")
