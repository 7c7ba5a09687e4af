from django.core.management.base import BaseCommand

from removal import uploads


class Command(BaseCommand):
    help = "Delete the website's stored originals and alphas past their retention."

    def handle(self, *args, **options):
        count = uploads.purge_expired()
        self.stdout.write(f"Purged {count} upload{'s' if count != 1 else ''}.")
