from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.crypto import get_random_string

from billing import ledger
from billing.formatting import format_credits, format_time
from billing.models import CreditPack


class Command(BaseCommand):
    help = (
        "Grant credits to an account (a ledger entry). useBefore moves to at least now + "
        "CUTOUT_GRANT_VALIDITY_DAYS, or + the pack's validity with --pack."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("amount", help="credits, e.g. 100 or 0.5")
        parser.add_argument("--pack", help="name of the credit pack this grant stands for")
        parser.add_argument(
            "--reference",
            help="idempotency key: a second grant with the same reference does nothing",
        )
        parser.add_argument("--note", default="", help="why, kept in the ledger entry")

    def handle(self, *args, email: str, amount: str, pack: str | None, **options):
        user = get_user_model().objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no account with e-mail {email}")
        try:
            credits = Decimal(amount)
        except InvalidOperation:
            raise CommandError(f"AMOUNT must be a number of credits, not {amount!r}") from None
        if not credits.is_finite() or credits <= 0:
            raise CommandError("AMOUNT must be a positive number of credits")
        credit_pack = None
        if pack:
            credit_pack = CreditPack.objects.filter(name=pack).first()
            if credit_pack is None:
                names = ", ".join(CreditPack.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"no credit pack named {pack!r} (packs: {names})")
        reference = options["reference"] or f"grant:{get_random_string(20)}"
        cause = " ".join(part for part in ("grant_credits", options["note"]) if part)
        entry = ledger.grant(user, credits, reference, credit_pack, cause=cause)
        summary = ledger.account_summary(user)
        self.stdout.write(
            f"{user.email}: +{format_credits(entry.amount)} credits ({entry.reference}); "
            f"balance {format_credits(summary.balance)}, useBefore "
            f"{format_time(summary.use_before)}"
        )
