"""The pricing page, the credits page with its CSV export, the nav links and the admin."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from billing import ledger
from billing.models import LedgerEntry
from tests.conftest import make_user
from tests.support_billing import make_pack

CREDITS = "/account/credits/"
CSV = "/account/credits.csv"


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- pricing -------------------------------------------------------------------------------


def test_the_pricing_page_lists_active_packs_and_says_payments_are_off(client, db):
    make_pack(name="Hundred", credits=Decimal(100), price_cents=900, validity_days=365)
    make_pack(name="Hidden", active=False)
    page = client.get(reverse("billing:pricing")).content.decode()
    assert "Hundred" in page and "9.00 USD" in page and "365 days" in page
    assert "<td>100</td>" in page
    assert "Hidden" not in page
    assert "Payments are not configured on this server." in page
    assert "Buy</button>" not in page


def test_with_stripe_keys_logged_in_users_get_buy_buttons(client, alice, pack, stripe_server):
    client.force_login(alice)
    page = client.get(reverse("billing:pricing")).content.decode()
    assert reverse("billing:buy", args=[pack.pk]) in page
    assert "not configured" not in page


def test_with_stripe_keys_anonymous_visitors_are_asked_to_log_in(client, pack, stripe_server):
    page = client.get(reverse("billing:pricing")).content.decode()
    assert "Log in to buy" in page
    assert reverse("billing:buy", args=[pack.pk]) not in page


def test_a_cancelled_checkout_says_nothing_was_charged(client, db):
    page = client.get(reverse("billing:pricing") + "?checkout=cancelled").content.decode()
    assert "nothing was charged" in page


# --- credits page -------------------------------------------------------------------------


def test_the_credits_page_needs_a_login(client, db):
    for url in (CREDITS, CSV):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_credits_page_shows_balance_pack_use_before_state_and_ledger(client, alice):
    ledger.grant(alice, Decimal("2.5"), "grant:extra", make_pack(name="Bonus"))
    ledger.settle(ledger.reserve(alice, Decimal("0.25"), "req-page"))
    ledger.reserve(alice, Decimal(1), "req-open")
    client.force_login(alice)
    page = client.get(CREDITS).content.decode()
    assert 'data-testid="balance">102.25<' in page
    assert 'data-testid="held">1<' in page
    assert 'data-testid="pack">Bonus<' in page
    assert 'data-testid="state">Active: your credits are ready to use.<' in page
    assert "UTC</time>" in page
    rows = page.split('data-testid="entry"')[1:]
    assert len(rows) == 3
    # Newest first.
    assert "req-page" in rows[0] and "-0.25" in rows[0]
    assert "grant:extra" in rows[1] and "Bonus" in rows[1]
    assert "persona:alice@example.com" in rows[2]


def test_bob_sees_none_of_alices_ledger(client, alice, bob):
    ledger.settle(ledger.reserve(alice, Decimal(1), "req-alice-secret"))
    client.force_login(bob)
    page = client.get(CREDITS).content.decode()
    assert "req-alice-secret" not in page and "persona:alice" not in page
    assert 'data-testid="balance">0<' in page
    assert "No credit movements yet." in page
    rows = csv_rows(client.get(CSV))
    assert rows == [
        ["time", "kind", "amount", "balance_after", "uncollected", "pack", "reference", "cause"]
    ]


def test_the_ledger_is_paginated_newest_first(client, bob):
    for n in range(30):
        ledger.grant(bob, Decimal(1), f"grant:{n:02d}")
    client.force_login(bob)
    first = client.get(CREDITS).content.decode()
    assert first.count('data-testid="entry"') == 25
    assert first.index("grant:29") < first.index("grant:28")
    assert "grant:04" not in first
    assert "Page 1 of 2" in first
    second = client.get(CREDITS + "?page=2").content.decode()
    assert second.count('data-testid="entry"') == 5
    assert "grant:00" in second and "grant:29" not in second
    assert client.get(CREDITS + "?page=999").status_code == 200  # the last page, not an error


def test_the_csv_export_holds_every_entry_newest_first(client, alice):
    ledger.settle(ledger.reserve(alice, Decimal("0.25"), "req-csv"))
    client.force_login(alice)
    response = client.get(CSV)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, charge, grant = csv_rows(response)
    assert header[:4] == ["time", "kind", "amount", "balance_after"]
    assert charge[1:5] == ["charge", "-0.25", "99.75", "0"]
    assert charge[6] == "req-csv"
    assert grant[1:4] == ["grant", "100", "100"]
    assert charge[0].endswith("Z")


def test_the_csv_export_defuses_spreadsheet_formulas(client, bob):
    ledger.grant(bob, Decimal(1), "=HYPERLINK(1)", cause="@SUM(1)")
    client.force_login(bob)
    [_, row] = csv_rows(client.get(CSV))
    assert row[6] == "'=HYPERLINK(1)" and row[7] == "'@SUM(1)"


def test_a_successful_checkout_return_thanks_the_buyer(client, alice):
    client.force_login(alice)
    page = client.get(CREDITS + "?checkout=success").content.decode()
    assert "as soon as the payment is confirmed" in page


# --- nav and admin --------------------------------------------------------------------------


def test_the_nav_links_pricing_and_credits(client, alice):
    assert reverse("billing:pricing") in client.get("/").content.decode()
    client.force_login(alice)
    assert reverse("billing:credits") in client.get("/").content.decode()


@pytest.fixture
def admin_client_(client, db):
    admin = make_user("admin@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_the_admin_shows_the_ledger_read_only(admin_client_, alice):
    entry = LedgerEntry.objects.get(account__user=alice)
    assert admin_client_.get("/admin/billing/ledgerentry/").status_code == 200
    assert admin_client_.get("/admin/billing/creditaccount/").status_code == 200
    assert admin_client_.get("/admin/billing/ledgerentry/add/").status_code == 403
    change = admin_client_.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert change.status_code == 200 and b'name="amount"' not in change.content
    delete = admin_client_.post(f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_the_admin_edits_packs(admin_client_):
    assert admin_client_.get("/admin/billing/creditpack/add/").status_code == 200


def test_the_admin_is_closed_to_customers(client, alice):
    client.force_login(alice)
    response = client.get("/admin/billing/ledgerentry/")
    assert response.status_code == 302
