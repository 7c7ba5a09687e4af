"""The credits ledger: reserve/settle/release, grants, expiry, idempotency, pricing, commands,
and (on PostgreSQL) real concurrency."""

import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from billing import ledger, pricing
from billing.formatting import dumps, format_credits, format_time
from billing.models import CreditAccount, LedgerEntry, Reservation
from tests.conftest import make_user
from tests.support_billing import ALICE_CREDITS, give_credits, make_pack

D = Decimal


def account_of(user) -> CreditAccount:
    return CreditAccount.objects.get(user=user)


def lapse(user, ago: timedelta = timedelta(days=1)) -> None:
    """Move useBefore into the past, as if the pack's validity had run out."""
    CreditAccount.objects.filter(user=user).update(use_before=timezone.now() - ago)


# --- formatting and pricing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (D("1"), "1"),
        (D("1.000000"), "1"),
        (D("0.25"), "0.25"),
        (D("0.250000"), "0.25"),
        (D("0"), "0"),
        (D("0.000000"), "0"),
        (D("-0.000"), "0"),
        (D("-1.5"), "-1.5"),
        (D("1E+2"), "100"),
        (D("1E-7"), "0.0000001"),
        (D("0.000001"), "0.000001"),
        (D("12345678.123456"), "12345678.123456"),
    ],
)
def test_credits_are_written_as_the_shortest_plain_decimal(value, text):
    assert format_credits(value) == text


def test_json_writes_decimals_as_plain_numbers_never_exponents():
    body = dumps({"credits": D("0.000001"), "n": [D("2.50"), "x"], "s": "0.5"})
    assert body == '{"credits":0.000001,"n":[2.5,"x"],"s":"0.5"}'


def test_times_are_utc_seconds_with_z():
    moment = timezone.datetime(
        2027, 1, 31, 13, 0, 0, 999999, tzinfo=timezone.get_fixed_timezone(60)
    )
    assert format_time(moment) == "2027-01-31T12:00:00Z"
    assert format_time(None) == "1970-01-01T00:00:00Z"


def test_prices_default_to_one_credit_an_image_and_a_quarter_a_preview():
    assert pricing.quote("image") == pricing.Quote(hold=D(1), calculated=D(1))
    assert pricing.quote("preview") == pricing.Quote(hold=D("0.25"), calculated=D("0.25"))


def test_test_calls_are_free_but_report_the_production_price(settings):
    settings.CUTOUT_CREDITS_PER_IMAGE = D("2.5")
    quote = pricing.quote("image", test=True)
    assert quote.is_free
    assert quote.hold == 0
    assert quote.calculated == D("2.5")


def test_reseller_mode_holds_markup_times_one_upstream_credit(settings):
    settings.CUTOUT_ENGINE = "pixian"
    settings.CUTOUT_RESELLER_MARKUP = D("1.5")
    assert pricing.quote("image").hold == D("1.5")
    assert pricing.quote("preview").hold == D("1.5")
    assert pricing.reseller_charge("0.5") == D("0.75")
    assert pricing.reseller_charge(D("0.3333333")) == D("0.500000")


def test_unknown_products_have_no_price():
    with pytest.raises(ValueError):
        pricing.quote("poster")


# --- grants ----------------------------------------------------------------------------------


def test_the_alice_persona_has_credits_and_bob_none(alice, bob):
    assert ledger.balance(alice) == ALICE_CREDITS
    assert ledger.balance(bob) == 0
    assert ledger.account_summary(bob).state == "dormant"


def test_a_grant_moves_use_before_to_the_grant_validity(bob, settings):
    settings.CUTOUT_GRANT_VALIDITY_DAYS = 10
    before = timezone.now()
    entry = ledger.grant(bob, D("2.5"), "grant:1", cause="welcome")
    account = account_of(bob)
    assert entry.kind == "grant" and entry.amount == D("2.5") and entry.balance_after == D("2.5")
    assert before + timedelta(days=10) <= account.use_before <= timezone.now() + timedelta(days=10)
    assert account.pack is None
    assert ledger.account_summary(bob).state == "active"


def test_a_grant_with_a_pack_uses_its_validity_and_names_it(bob):
    pack = make_pack(name="Tiny", validity_days=3)
    ledger.grant(bob, D(5), "grant:pack", pack)
    summary = ledger.account_summary(bob)
    assert summary.credit_pack == "Tiny"
    assert summary.use_before <= timezone.now() + timedelta(days=3)
    assert summary.use_before > timezone.now() + timedelta(days=2)


def test_use_before_never_moves_earlier(bob, settings):
    settings.CUTOUT_GRANT_VALIDITY_DAYS = 365
    ledger.grant(bob, D(1), "grant:long")
    long_until = account_of(bob).use_before
    ledger.grant(bob, D(1), "grant:short", make_pack(validity_days=1))
    assert account_of(bob).use_before == long_until


def test_the_same_grant_reference_moves_credits_once(bob):
    first = ledger.grant(bob, D(7), "grant:once")
    second = ledger.grant(bob, D(7), "grant:once")
    assert first.pk == second.pk
    assert ledger.balance(bob) == 7
    assert LedgerEntry.objects.filter(reference="grant:once").count() == 1


@pytest.mark.parametrize("amount", [D(0), D(-1)])
def test_grants_must_be_positive(bob, amount):
    with pytest.raises(ValueError):
        ledger.grant(bob, amount, "grant:bad")
    assert not LedgerEntry.objects.exists()


# --- reserve, settle, release -------------------------------------------------------------


def test_reserve_holds_and_settle_charges_the_held_amount(bob):
    give_credits(bob, D(3))
    reservation = ledger.reserve(bob, D(1), "req-1", cause="request req-1")
    assert ledger.account_summary(bob).credits == 2  # held credits are not spendable
    assert ledger.balance(bob) == 3  # but still in the ledger balance until settled
    entry = ledger.settle(reservation)
    assert entry.kind == "charge" and entry.amount == -1 and entry.balance_after == 2
    assert entry.reference == "req-1" and entry.cause == "request req-1"
    assert reservation.status == "settled"
    assert ledger.balance(bob) == 2 and account_of(bob).held == 0
    assert ledger.check() == []


def test_reserve_refuses_to_go_below_zero(bob):
    give_credits(bob, D("0.5"))
    with pytest.raises(ledger.InsufficientCreditsError) as refused:
        ledger.reserve(bob, D(1), "req-too-much")
    assert refused.value.code == 4020
    assert not isinstance(refused.value, ledger.CreditsLapsedError)
    assert refused.value.available == D("0.5")
    assert not Reservation.objects.exists()
    assert ledger.balance(bob) == D("0.5")


def test_an_account_that_never_had_credits_is_refused_with_4020(bob):
    with pytest.raises(ledger.InsufficientCreditsError) as refused:
        ledger.reserve(bob, D(1), "req-nothing")
    assert refused.value.code == 4020


def test_open_holds_count_against_the_balance(bob):
    give_credits(bob, D(1))
    ledger.reserve(bob, D(1), "req-a")
    with pytest.raises(ledger.InsufficientCreditsError):
        ledger.reserve(bob, D(1), "req-b")


def test_the_same_request_reference_holds_once(bob):
    give_credits(bob, D(2))
    first = ledger.reserve(bob, D(1), "req-same")
    second = ledger.reserve(bob, D(1), "req-same")
    assert first.pk == second.pk
    assert account_of(bob).held == 1
    ledger.settle(second)
    # A replay after the balance is gone is still the same request, not a new refusal.
    give_credits(bob, D(1), reference="more")
    ledger.reserve(bob, D(2), "req-other")
    assert ledger.reserve(bob, D(1), "req-same").pk == first.pk


def test_a_reference_of_another_account_is_refused(alice, bob):
    give_credits(bob, D(1))
    ledger.reserve(alice, D(1), "req-shared")
    with pytest.raises(ValueError):
        ledger.reserve(bob, D(1), "req-shared")
    assert account_of(bob).held == 0


def test_settling_twice_charges_once(bob):
    give_credits(bob, D(2))
    reservation = ledger.reserve(bob, D(1), "req-twice")
    first = ledger.settle(reservation)
    again = ledger.settle(Reservation.objects.get(pk=reservation.pk))
    assert first.pk == again.pk
    assert ledger.balance(bob) == 1


def test_release_returns_the_hold_and_changes_no_balance(bob):
    give_credits(bob, D(1))
    reservation = ledger.reserve(bob, D(1), "req-fail")
    assert ledger.release(reservation) is True
    assert ledger.release(reservation) is False
    assert ledger.balance(bob) == 1 and account_of(bob).held == 0
    assert not LedgerEntry.objects.filter(kind="charge").exists()
    with pytest.raises(ledger.ReservationClosedError):
        ledger.settle(reservation)
    assert ledger.check() == []


def test_release_after_settle_changes_nothing(bob):
    give_credits(bob, D(1))
    reservation = ledger.reserve(bob, D(1), "req-done")
    ledger.settle(reservation)
    assert ledger.release(reservation) is False
    assert ledger.balance(bob) == 0


@pytest.mark.parametrize("amount", [D(0), D(-1)])
def test_reservations_must_be_positive(bob, amount):
    give_credits(bob, D(1))
    with pytest.raises(ValueError):
        ledger.reserve(bob, amount, "req-free")


def test_a_smaller_settlement_charges_only_that(bob):
    give_credits(bob, D(2))
    reservation = ledger.reserve(bob, D(1), "req-cheap")
    entry = ledger.settle(reservation, D("0.25"), cause="upstream u-1")
    assert entry.amount == D("-0.25") and entry.uncollected == 0
    assert entry.cause == "upstream u-1"
    assert ledger.balance(bob) == D("1.75") and account_of(bob).held == 0


def test_reseller_settlement_is_capped_at_the_hold_and_logs_the_loss(bob, settings, caplog):
    settings.CUTOUT_ENGINE = "pixian"
    settings.CUTOUT_RESELLER_MARKUP = D("1.5")
    give_credits(bob, D("1.5"))
    reservation = ledger.reserve(bob, pricing.quote().hold, "req-upstream")
    # The upstream charged 2 credits where 1 was expected: 3 due, 1.5 held.
    entry = ledger.settle(reservation, pricing.reseller_charge("2"))
    assert entry.amount == D("-1.5")
    assert entry.uncollected == D("1.5")
    assert ledger.balance(bob) == 0
    assert "uncollected" in caplog.text
    assert ledger.check() == []


def test_reseller_markup_charges_upstream_times_markup(bob, settings):
    settings.CUTOUT_ENGINE = "pixian"
    settings.CUTOUT_RESELLER_MARKUP = D("1.2")
    give_credits(bob, D(5))
    reservation = ledger.reserve(bob, pricing.quote().hold, "req-markup")
    entry = ledger.settle(reservation, pricing.reseller_charge("1"))
    assert entry.amount == D("-1.2")
    assert ledger.balance(bob) == D("3.8")


# --- expiry ----------------------------------------------------------------------------------


def test_lapsed_credits_are_refused_with_4021_and_expire(bob):
    give_credits(bob, D(5))
    lapse(bob)
    with pytest.raises(ledger.InsufficientCreditsError) as refused:
        ledger.reserve(bob, D(1), "req-late")
    assert isinstance(refused.value, ledger.CreditsLapsedError)
    assert refused.value.code == 4021
    # The expiry survives the refusal: it was written before it, under the same lock.
    expiry = LedgerEntry.objects.get(kind="expiry")
    assert expiry.amount == -5 and expiry.balance_after == 0
    assert ledger.balance(bob) == 0
    assert ledger.check() == []


def test_expiry_is_applied_when_credits_are_read(bob):
    give_credits(bob, D(5))
    lapse(bob)
    summary = ledger.account_summary(bob)
    assert summary.state == "dormant" and summary.credits == 0
    assert LedgerEntry.objects.filter(kind="expiry").count() == 1
    ledger.account_summary(bob)
    assert LedgerEntry.objects.filter(kind="expiry").count() == 1


def test_expiry_spares_credits_held_by_a_request_in_progress(bob):
    give_credits(bob, D(5))
    reservation = ledger.reserve(bob, D(1), "req-in-flight")
    lapse(bob)
    assert ledger.balance(bob) == 1  # 4 expired, 1 still held
    entry = ledger.settle(reservation)
    assert entry.balance_after == 0
    assert ledger.check() == []


def test_a_grant_after_a_lapse_starts_a_fresh_validity(bob):
    give_credits(bob, D(5))
    lapse(bob)
    ledger.grant(bob, D(2), "grant:again")
    summary = ledger.account_summary(bob)
    assert summary.credits == 2  # the old 5 expired first
    assert summary.state == "active"
    assert [e.kind for e in ledger.entries(bob)] == ["grant", "expiry", "grant"]


# --- operator commands ---------------------------------------------------------------------


def test_grant_credits_command_adds_an_entry(bob, settings):
    settings.CUTOUT_GRANT_VALIDITY_DAYS = 30
    out = StringIO()
    call_command("grant_credits", "BOB@example.com", "12.5", "--reference", "ops-1", stdout=out)
    assert out.getvalue().startswith("bob@example.com: +12.5 credits (ops-1); balance 12.5,")
    assert ledger.balance(bob) == D("12.5")
    assert account_of(bob).use_before > timezone.now() + timedelta(days=29)


def test_grant_credits_with_a_used_reference_reports_that_nothing_was_granted(alice, bob):
    call_command("grant_credits", "bob@example.com", "5", "--reference", "ops-1", stdout=StringIO())
    again = StringIO()
    call_command("grant_credits", "bob@example.com", "7", "--reference", "ops-1", stdout=again)
    assert again.getvalue().startswith(
        "bob@example.com: nothing granted: reference 'ops-1' granted +5 on "
    )
    assert "already; balance 5," in again.getvalue()
    with pytest.raises(CommandError) as refused:
        call_command("grant_credits", "alice@example.com", "5", "--reference", "ops-1")
    assert str(refused.value).startswith("nothing granted: reference 'ops-1' granted +5 on ")
    assert str(refused.value).endswith(" to another account (bob@example.com)")
    assert ledger.balance(bob) == 5 and ledger.balance(alice) == ALICE_CREDITS


@pytest.mark.parametrize("amount", ["0.000001", "1000000000", "7", "0.5", "012.340000"])
def test_grant_credits_takes_plain_decimals_to_six_places_without_rounding(bob, amount):
    out = StringIO()
    call_command("grant_credits", "bob@example.com", amount, stdout=out)
    assert ledger.balance(bob) == D(amount)
    assert f": +{format_credits(D(amount))} credits (grant:" in out.getvalue()


@pytest.mark.parametrize(
    "amount",
    [
        "1e400",
        "1e-7",
        "1e12",
        "1000000000.000001",
        "5_000",
        "\uff15\uff10\uff10\uff10",  # full-width digits
        "\u0665",  # Arabic-Indic five
        "1.0000001",
        "0.0000001",
        "0",
        "+5",
        " 5",
        "5\n",
        ".5",
        "5.",
        "Infinity",
        "0x10",
        "",
    ],
)
def test_grant_credits_refuses_anything_but_a_plain_amount_in_one_line(bob, amount):
    with pytest.raises(CommandError) as refused:
        call_command("grant_credits", "bob@example.com", amount, stdout=StringIO())
    message = str(refused.value)
    assert message.startswith("AMOUNT must be a plain number of credits from 0.000001 to ")
    assert "\n" not in message
    assert not LedgerEntry.objects.filter(account__user=bob).exists()


def test_grant_credits_on_the_command_line_prints_one_line_not_a_traceback():
    done = subprocess.run(
        [sys.executable, "manage.py", "grant_credits", "bob@example.com", "1e400"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("CommandError: AMOUNT must be a plain number")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_grant_credits_command_with_a_pack(bob):
    make_pack(name="Gift", validity_days=7)
    call_command("grant_credits", "bob@example.com", "3", "--pack", "Gift", stdout=StringIO())
    assert ledger.account_summary(bob).credit_pack == "Gift"


@pytest.mark.parametrize(
    "args",
    [
        ["nobody@example.com", "1"],
        ["bob@example.com", "lots"],
        ["bob@example.com", "-1"],
        ["bob@example.com", "NaN"],
        ["bob@example.com", "1", "--pack", "No such pack"],
    ],
)
def test_grant_credits_command_refuses_bad_input(bob, args):
    with pytest.raises(CommandError):
        call_command("grant_credits", *args, stdout=StringIO())
    assert not LedgerEntry.objects.filter(account__user=bob).exists()


@pytest.mark.tampers_with_the_ledger
def test_check_ledger_passes_on_honest_books_and_fails_on_a_tampered_balance(alice, bob):
    give_credits(bob, D(2))
    ledger.settle(ledger.reserve(bob, D("0.25"), "req-x"))
    ledger.reserve(alice, D(1), "req-open")
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "ledger OK: 2 account(s)" in out.getvalue()

    CreditAccount.objects.filter(user=bob).update(balance=D(5))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=err)
    assert "bob@example.com" in err.getvalue() and "sum of entries" in err.getvalue()


@pytest.mark.tampers_with_the_ledger
def test_check_ledger_notices_held_credits_without_a_reservation(bob):
    give_credits(bob, D(2))
    CreditAccount.objects.filter(user=bob).update(held=D(1))
    assert [p.message for p in ledger.check()] == ["held 1.000000 != open reservations 0"]


def test_release_stale_reservations_returns_only_old_holds(alice):
    crashed = ledger.reserve(alice, D(1), "req-crashed")
    live = ledger.reserve(alice, D(1), "req-live")
    Reservation.objects.filter(pk=crashed.pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    out = StringIO()
    call_command("release_stale_reservations", stdout=out)
    assert "released req-crashed: 1 credits" in out.getvalue()
    assert "1 stale reservation(s) released" in out.getvalue()
    crashed.refresh_from_db()
    live.refresh_from_db()
    assert crashed.status == "released" and live.status == "held"
    assert account_of(alice).held == 1
    assert ledger.balance(alice) == ALICE_CREDITS
    # The request that "crashed" cannot charge after all: nothing is held for it any more.
    with pytest.raises(ledger.ReservationClosedError):
        ledger.settle(crashed)
    call_command("release_stale_reservations", "--older-than-minutes", "0", stdout=out)
    live.refresh_from_db()
    assert live.status == "released"
    assert ledger.check() == []


def test_demo_account_gets_credits_once(db):
    out = StringIO()
    call_command("demo_account", stdout=out)
    call_command("demo_account", stdout=out)
    from webapp.models import User

    demo = User.objects.get(email="demo@cutout.local")
    assert ledger.balance(demo) == 50
    assert "credits:    50" in out.getvalue()


# --- concurrency (PostgreSQL, real threads) -----------------------------------------------


def run_threads(count: int, work) -> list:
    """Run `work(i)` in `count` threads released together; returns their results (or errors).
    Each thread closes its own database connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # the test inspects what each thread raised
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.postgres
@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_calls_against_twenty_credits_charge_exactly_twenty():
    user = make_user("racer@example.com")
    ledger.grant(user, D(20), "race:grant")

    def call(i: int) -> str:
        reservation = ledger.reserve(user, D(1), f"race:{i}")
        ledger.settle(reservation)
        return "charged"

    results = run_threads(50, call)
    charged = [r for r in results if r == "charged"]
    refused = [r for r in results if isinstance(r, ledger.InsufficientCreditsError)]
    assert len(charged) == 20, results
    assert len(refused) == 30, results
    assert ledger.balance(user) == 0
    assert LedgerEntry.objects.filter(kind="charge").count() == 20
    assert ledger.check() == []
    call_command("check_ledger", stdout=StringIO())


@pytest.mark.postgres
@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_grant_and_one_request_move_credits_once():
    user = make_user("replayer@example.com")

    results = run_threads(20, lambda i: ledger.grant(user, D(3), "replay:grant").pk)
    assert len(set(results)) == 1, results
    assert ledger.balance(user) == 3

    def replayed_call(i: int) -> int:
        reservation = ledger.reserve(user, D(1), "replay:request")
        return ledger.settle(reservation).pk

    results = run_threads(20, replayed_call)
    assert len(set(results)) == 1, results
    assert ledger.balance(user) == 2
    assert ledger.check() == []


@pytest.mark.postgres
@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_first_use_of_an_account_from_many_threads_creates_one_account():
    user = make_user("newcomer@example.com")
    results = run_threads(10, lambda i: ledger.grant(user, D(1), f"first:{i}").pk)
    assert all(isinstance(r, int) for r in results), results
    assert CreditAccount.objects.filter(user=user).count() == 1
    assert ledger.balance(user) == 10
    assert ledger.check() == []


# --- batch holds (issue 23) --------------------------------------------------------------------


def test_items_draw_from_a_batch_hold_and_what_is_released_goes_back_to_it(alice):
    hold = ledger.hold_batch(alice, Decimal(3), "batch:b1")
    assert account_of(alice).held == 3 and hold.kind == Reservation.Kind.BATCH_HOLD
    first = ledger.reserve_from_hold(hold, Decimal(1), "batch:b1:0:0")
    assert ledger.reserve_from_hold(hold, Decimal(1), "batch:b1:0:0").pk == first.pk  # a replay
    failed = ledger.reserve_from_hold(hold, Decimal(1), "batch:b1:1:0")
    assert Reservation.objects.get(pk=hold.pk).amount == 1 and account_of(alice).held == 3
    ledger.settle(first)
    assert ledger.release(failed)
    assert Reservation.objects.get(pk=hold.pk).amount == 2
    assert account_of(alice).held == 2 and ledger.balance(alice) == ALICE_CREDITS - 1
    with pytest.raises(ledger.InsufficientCreditsError):
        ledger.reserve_from_hold(hold, Decimal(3), "batch:b1:2:0")
    with pytest.raises(ValueError):
        ledger.settle(hold)
    assert ledger.release(hold)
    assert account_of(alice).held == 0 and ledger.balance(alice) == ALICE_CREDITS - 1
    with pytest.raises(ledger.InsufficientCreditsError):
        ledger.reserve_from_hold(hold, Decimal(1), "batch:b1:3:0")


def test_a_batch_larger_than_the_balance_holds_nothing(db):
    carol = give_credits(make_user("carol@example.com"), Decimal(2))
    with pytest.raises(ledger.InsufficientCreditsError):
        ledger.hold_batch(carol, Decimal(3), "batch:big")
    assert account_of(carol).held == 0 and not Reservation.objects.exists()


def test_release_stale_takes_neither_a_batch_hold_nor_its_items_until_the_batch_ends(alice):
    hold = ledger.hold_batch(alice, Decimal(2), "batch:b2")
    item = ledger.reserve_from_hold(hold, Decimal(1), "batch:b2:0:0")
    single = ledger.reserve(alice, Decimal(1), "api:r1")
    assert ledger.release_stale(timedelta(0)) == [single]
    ledger.release(hold)
    assert ledger.release_stale(timedelta(0)) == [item]  # its batch ended without it
    assert account_of(alice).held == 0
