from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.crypto import get_random_string

from billing import ledger
from billing.formatting import format_credits, format_time, parse_credits
from billing.models import CreditPack

# One grant moves at most this many credits: a typo of a few extra digits is refused, and
# balances stay far inside the ledger's 12 integer digits.
MAX_GRANT = Decimal(1_000_000_000)
AMOUNT_RULE = (
    "AMOUNT must be a plain number of credits from 0.000001 to 1000000000: ASCII digits, "
    "an optional point and at most six decimals (e.g. 100 or 0.5)"
)


def parse_amount(text: str) -> Decimal:
    try:
        credits = parse_credits(text)
    except ValueError:
        raise CommandError(f"{AMOUNT_RULE}, not {text!r:.40}") from None
    if not 0 < credits <= MAX_GRANT:
        raise CommandError(f"{AMOUNT_RULE}, not {text!r:.40}")
    return credits


class Command(BaseCommand):
    help = (
        "Grant credits to an account (a ledger entry). useBefore moves to at least now + "
        "CUTOUT_GRANT_VALIDITY_DAYS, or + the pack's validity with --pack. Prints what was "
        "granted: nothing when --reference was used before."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "amount", help="credits: 0.000001 to 1000000000, at most six decimals (100, 0.5)"
        )
        parser.add_argument("--pack", help="name of the credit pack this grant stands for")
        parser.add_argument(
            "--reference",
            help="idempotency key: a second grant with the same reference does nothing",
        )
        parser.add_argument("--note", default="", help="why, kept in the ledger entry")

    def handle(self, *args: str, email: str, amount: str, pack: str | None, **options: Any) -> None:
        credits = parse_amount(amount)
        user = get_user_model().objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no account with e-mail {email}")
        credit_pack = None
        if pack:
            credit_pack = CreditPack.objects.filter(name=pack).first()
            if credit_pack is None:
                names = ", ".join(CreditPack.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"no credit pack named {pack!r} (packs: {names})")
        reference = options["reference"] or f"grant:{get_random_string(20)}"
        cause = " ".join(part for part in ("grant_credits", options["note"]) if part)
        entry, granted = ledger.grant_once(user, credits, reference, credit_pack, cause=cause)
        if granted:
            what = f"+{format_credits(entry.amount)} credits ({reference})"
        else:
            earlier = (
                f"reference {reference!r} granted +{format_credits(entry.amount)} on "
                f"{format_time(entry.created_at)}"
            )
            if entry.account.user_id != user.pk:
                raise CommandError(
                    f"nothing granted: {earlier} to another account ({entry.account.user.email})"
                )
            what = f"nothing granted: {earlier} already"
        summary = ledger.account_summary(user)
        self.stdout.write(
            f"{user.email}: {what}; balance {format_credits(summary.balance)}, useBefore "
            f"{format_time(summary.use_before)}"
        )
