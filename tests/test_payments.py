"""Stripe: Checkout against a local stand-in of Stripe's API, webhooks signed with Stripe's
scheme and verified by the stripe library."""

import base64
import io
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing import ledger
from billing.models import LedgerEntry, Purchase, StripeEvent
from tests.conftest import make_key, make_user
from tests.support_billing import (
    ALICE_CREDITS,
    STRIPE_SECRET_KEY,
    make_pack,
    sign_payload,
    stripe_event,
)

D = Decimal
WEBHOOK = "/billing/stripe/webhook/"


def session_object(user, pack, session_id="cs_test_paid", **overrides) -> dict:
    """A completed Checkout session as Stripe sends it, for a session we created."""
    obj = {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": pack.price_cents,
        "currency": pack.currency,
        "payment_intent": f"pi_{session_id}",
        "client_reference_id": str(user.pk),
        "metadata": {"user_id": str(user.pk), "pack_id": str(pack.pk), "credits": "50"},
    }
    obj.update(overrides)
    return obj


def charge_object(session_id="cs_test_paid", amount=500, refunded=0, **overrides) -> dict:
    obj = {
        "id": f"ch_{session_id}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded >= amount,
        "currency": "usd",
        "payment_intent": f"pi_{session_id}",
    }
    obj.update(overrides)
    return obj


def post_event(client, payload: bytes, signature: str | None = "sign"):
    headers = {}
    if signature == "sign":
        signature = sign_payload(payload)
    if signature is not None:
        headers["HTTP_STRIPE_SIGNATURE"] = signature
    return client.post(WEBHOOK, payload, content_type="application/json", **headers)


@pytest.fixture
def paid(client, bob, pack, stripe_webhook_secret):
    """Bob bought `pack` (50 credits, 5.00 USD) through a signed checkout.session.completed."""
    payload = stripe_event("checkout.session.completed", session_object(bob, pack), "evt_paid")
    response = post_event(client, payload)
    assert response.status_code == 200, response.content
    return Purchase.objects.get(session_id="cs_test_paid")


# --- Checkout ------------------------------------------------------------------------------


def test_buying_a_pack_starts_a_stripe_checkout_session(client, alice, pack, stripe_server):
    client.force_login(alice)
    response = client.post(reverse("billing:buy", args=[pack.pk]))
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.test/pay/cs_test_1"
    [sent] = stripe_server.requests
    assert sent["path"] == "/v1/checkout/sessions"
    assert sent["authorization"] == f"Bearer {STRIPE_SECRET_KEY}"
    fields = sent["fields"]
    assert fields["mode"] == "payment"
    assert fields["line_items[0][price_data][unit_amount]"] == "500"
    assert fields["line_items[0][price_data][currency]"] == "usd"
    assert fields["line_items[0][price_data][product_data][name]"] == "Test pack: 50 credits"
    assert fields["metadata[user_id]"] == str(alice.pk)
    assert fields["metadata[pack_id]"] == str(pack.pk)
    assert fields["metadata[credits]"] == "50"
    assert fields["success_url"] == "http://testserver/account/credits/?checkout=success"
    assert fields["cancel_url"] == "http://testserver/pricing/?checkout=cancelled"
    # Starting a checkout moves no credits: only the webhook does.
    assert ledger.balance(alice) == ALICE_CREDITS


def test_a_stripe_failure_sends_the_buyer_back_with_a_message(client, alice, pack, stripe_server):
    stripe_server.fail_with = 400
    client.force_login(alice)
    response = client.post(reverse("billing:buy", args=[pack.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("billing:pricing")
    assert b"The payment provider is not available" in response.content


def test_without_keys_buying_says_payments_are_not_configured(client, alice, pack):
    client.force_login(alice)
    response = client.post(reverse("billing:buy", args=[pack.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("billing:pricing")
    assert b"Payments are not configured on this server." in response.content


def test_an_inactive_pack_cannot_be_bought(client, alice, stripe_server):
    retired = make_pack(name="Retired", active=False)
    client.force_login(alice)
    assert client.post(reverse("billing:buy", args=[retired.pk])).status_code == 404
    assert stripe_server.requests == []


def test_buying_needs_a_login_and_a_post(client, alice, pack, stripe_server):
    url = reverse("billing:buy", args=[pack.pk])
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(alice)
    assert client.get(url).status_code == 405
    assert stripe_server.requests == []


def test_bob_buying_is_checked_out_as_bob(client, alice, bob, pack, stripe_server):
    client.force_login(bob)
    client.post(reverse("billing:buy", args=[pack.pk]))
    assert stripe_server.requests[0]["fields"]["metadata[user_id]"] == str(bob.pk)
    assert stripe_server.requests[0]["fields"]["customer_email"] == "bob@example.com"


# --- Webhook: granting --------------------------------------------------------------------


def test_a_signed_completed_checkout_grants_the_pack(client, bob, pack, paid):
    assert paid.account.user == bob and paid.pack == pack
    assert paid.credits == 50 and paid.amount_cents == 500 and paid.payment_intent
    entry = LedgerEntry.objects.get(kind="purchase")
    assert entry.amount == 50 and entry.reference == "checkout:cs_test_paid"
    assert "evt_paid" in entry.cause
    summary = ledger.account_summary(bob)
    assert summary.credits == 50 and summary.credit_pack == "Test pack"
    assert summary.state == "active"
    # useBefore: now + the pack's 30 days.
    assert timezone.now() + timedelta(days=29) < summary.use_before
    assert summary.use_before <= timezone.now() + timedelta(days=30)
    assert StripeEvent.objects.filter(event_id="evt_paid").exists()


def test_a_bought_pack_shows_on_the_account_page_and_the_account_api(client, bob, paid):
    client.force_login(bob)
    page = client.get(reverse("billing:credits")).content.decode()
    assert 'data-testid="balance">50<' in page
    assert 'data-testid="pack">Test pack<' in page
    assert 'data-testid="state">Active: your credits are ready to use.<' in page
    assert "checkout:cs_test_paid" in page
    key_id, secret = make_key(bob)
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    api = client.get("/api/v2/account", HTTP_AUTHORIZATION=f"Basic {token}")
    body = api.json()
    assert body["creditPack"] == "Test pack" and body["state"] == "active"
    assert body["credits"] == 50 and b'"credits":50}' in api.content


def test_a_replayed_event_grants_nothing_more(client, bob, pack, paid):
    payload = stripe_event("checkout.session.completed", session_object(bob, pack), "evt_paid")
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == "replayed evt_paid"
    assert ledger.balance(bob) == 50
    assert Purchase.objects.count() == 1


def test_a_second_event_for_the_same_session_grants_nothing_more(client, bob, pack, paid):
    payload = stripe_event(
        "checkout.session.async_payment_succeeded", session_object(bob, pack), "evt_other"
    )
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == "already granted"
    assert ledger.balance(bob) == 50
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1


def test_an_unpaid_session_grants_only_when_its_payment_succeeds(
    client, bob, pack, stripe_webhook_secret
):
    waiting = session_object(bob, pack, payment_status="unpaid")
    response = post_event(client, stripe_event("checkout.session.completed", waiting, "evt_w"))
    assert response.json()["outcome"] == "awaiting payment"
    assert ledger.balance(bob) == 0
    succeeded = session_object(bob, pack)
    payload = stripe_event("checkout.session.async_payment_succeeded", succeeded, "evt_s")
    assert post_event(client, payload).json()["outcome"] == "granted"
    assert ledger.balance(bob) == 50


def test_a_purchase_extends_an_earlier_longer_validity_not_shortens_it(
    client, alice, pack, stripe_webhook_secret
):
    before = ledger.account_summary(alice).use_before  # alice's persona grant: 365 days
    payload = stripe_event("checkout.session.completed", session_object(alice, pack), "evt_a")
    assert post_event(client, payload).status_code == 200
    summary = ledger.account_summary(alice)
    assert summary.use_before == before
    assert summary.credits == ALICE_CREDITS + 50


def test_an_unknown_event_type_is_acknowledged(client, stripe_webhook_secret):
    payload = stripe_event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_c")
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored customer.created"


# --- Webhook: signed events that must not grant ----------------------------------------------


def assert_rejected(response, event_id: str, reason: str, caplog) -> StripeEvent:
    """Acknowledged (no retries), recorded as rejected for the admin, logged as an error,
    nothing granted and the books balanced."""
    assert response.status_code == 200, response.content
    outcome = response.json()["outcome"]
    assert outcome.startswith("rejected: ") and reason in outcome, outcome
    record = StripeEvent.objects.get(event_id=event_id)
    assert record.rejected and record.outcome == outcome[:200]
    assert any(
        r.levelname == "ERROR"
        and event_id in r.getMessage()
        and "nothing was granted" in r.getMessage()
        for r in caplog.records
    )
    assert not LedgerEntry.objects.filter(kind="purchase").exists()
    assert not Purchase.objects.exists()
    call_command("check_ledger", stdout=io.StringIO())
    return record


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"amount_total": 1}, "paid 1 'usd', but pack"),  # the 1-cent session
        ({"amount_total": 499}, "paid 499 'usd'"),
        ({"amount_total": 500, "currency": "eur"}, "paid 500 'eur'"),
        ({"amount_total": None}, "paid None"),
        ({"amount_total": "500"}, "paid '500'"),
        ({"amount_total": 500.0}, "paid 500.0"),
        ({"amount_total": 10**30}, "paid 1000000000000000000000000000000"),
        ({"amount_total": True}, "paid True"),
        ({"currency": ["usd"]}, "paid 500 ['usd']"),
    ],
)
def test_a_checkout_that_did_not_pay_the_packs_price_is_rejected(
    client, bob, pack, stripe_webhook_secret, caplog, overrides, reason
):
    obj = session_object(bob, pack, **overrides)
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_p"))
    assert_rejected(response, "evt_p", reason, caplog)
    assert ledger.balance(bob) == 0


def test_the_currency_is_compared_without_regard_to_case(client, bob, pack, stripe_webhook_secret):
    obj = session_object(bob, pack, currency="USD")
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_u"))
    assert response.json()["outcome"] == "granted"
    assert Purchase.objects.get().currency == "usd"


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ({"credits": "5000"}, "metadata.credits 5000 is not within"),
        ({"credits": "1e400"}, "metadata.credits '1e400' is not a plain number"),
        ({"credits": "NaN"}, "is not a plain number"),
        ({"credits": "-50"}, "is not a plain number"),
        ({"credits": "0"}, "metadata.credits 0 is not within"),
        ({"credits": "0.0000001"}, "is not a plain number"),
        ({"credits": 50}, "is not a plain number"),
        ({"credits": "9" * 5000}, "is not within"),
        ({"user_id": "9" * 40}, "names no known user/pack"),
        ({"user_id": "-1"}, "names no known user/pack"),
        ({"user_id": ["1"]}, "names no known user/pack"),
        ({"pack_id": "1e3"}, "names no known user/pack"),
        ("not a mapping", "the session has no metadata"),
        (None, "the session has no metadata"),
    ],
)
def test_a_checkout_with_absurd_metadata_is_rejected(
    client, bob, pack, stripe_webhook_secret, caplog, metadata, reason
):
    if isinstance(metadata, dict):
        metadata = {"user_id": str(bob.pk), "pack_id": str(pack.pk), "credits": "50", **metadata}
    obj = session_object(bob, pack, metadata=metadata)
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_m"))
    assert_rejected(response, "evt_m", reason, caplog)


def test_an_offer_below_the_packs_credits_grants_the_offer(
    client, bob, pack, stripe_webhook_secret
):
    # The pack was raised from 40 to 50 credits while the buyer was on Stripe's page.
    metadata = {"user_id": str(bob.pk), "pack_id": str(pack.pk), "credits": "40"}
    obj = session_object(bob, pack, metadata=metadata)
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_o"))
    assert response.json()["outcome"] == "granted"
    assert ledger.balance(bob) == 40


def test_ids_too_long_for_the_books_are_rejected(client, bob, pack, stripe_webhook_secret, caplog):
    obj = session_object(bob, pack, session_id="cs_" + "x" * 300)
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_l"))
    assert_rejected(response, "evt_l", "the session id is longer than 255", caplog)
    obj = session_object(bob, pack, payment_intent="pi_" + "x" * 300)
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_l2"))
    assert_rejected(response, "evt_l2", "payment_intent is longer than 255", caplog)


def test_an_event_for_an_unknown_user_is_rejected(client, bob, pack, stripe_webhook_secret, caplog):
    obj = session_object(bob, pack, metadata={"user_id": "999999", "pack_id": str(pack.pk)})
    response = post_event(client, stripe_event("checkout.session.completed", obj, "evt_x"))
    assert_rejected(response, "evt_x", "names no known user/pack", caplog)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"not json", "the body is not a JSON object"),
        (b"[]", "the body is not a JSON object"),
        (b'{"id": "evt_1"}', "the event's type None is unusable"),
        (b'{"id":"e","type":"charge.refunded","data":[]}', "data.object is not an object"),
        (b'{"id":5,"type":"charge.refunded","data":{"object":{}}}', "the event's id 5 is unusable"),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_acknowledged_and_recorded(
    client, db, stripe_webhook_secret, caplog, payload, reason
):
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == f"rejected: {reason}"
    [record] = StripeEvent.objects.all()
    assert record.rejected and reason in record.outcome
    assert any(r.levelname == "ERROR" for r in caplog.records)
    # Stripe's retry of the same body is a replay, not a second record.
    assert post_event(client, payload).json()["outcome"].startswith("replayed ")
    assert StripeEvent.objects.count() == 1


def test_a_refund_with_an_unreadable_amount_is_acknowledged(client, bob, paid, caplog):
    charge = {**charge_object(refunded=100), "amount": "lots"}
    payload = stripe_event("charge.refunded", charge, "evt_r")
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected: unreadable payload"
    assert ledger.balance(bob) == 50
    call_command("check_ledger", stdout=io.StringIO())


def test_the_admin_lists_rejected_events(client, bob, pack, stripe_webhook_secret):
    obj = session_object(bob, pack, amount_total=1)
    post_event(client, stripe_event("checkout.session.completed", obj, "evt_cheap"))
    client.force_login(make_user("admin@example.com", is_staff=True, is_superuser=True))
    page = client.get("/admin/billing/stripeevent/?rejected__exact=1").content.decode()
    assert "evt_cheap" in page and "paid 1 &#x27;usd&#x27;" in page


# --- Webhook: refusing ----------------------------------------------------------------------


@pytest.fixture
def completed(bob, pack) -> bytes:
    return stripe_event("checkout.session.completed", session_object(bob, pack), "evt_bad")


def test_a_bad_signature_is_refused(client, bob, completed, stripe_webhook_secret):
    forged = sign_payload(completed, secret="whsec_someone_else")
    response = post_event(client, completed, forged)
    assert response.status_code == 400
    assert ledger.balance(bob) == 0 and not StripeEvent.objects.exists()


def test_a_tampered_body_is_refused(client, bob, completed, stripe_webhook_secret):
    signature = sign_payload(completed)
    tampered = completed.replace(b'"credits": "50"', b'"credits": "5000"')
    assert tampered != completed
    assert post_event(client, tampered, signature).status_code == 400
    assert ledger.balance(bob) == 0


def test_a_stale_timestamp_is_refused(client, bob, completed, stripe_webhook_secret):
    old = sign_payload(completed, timestamp=int(time.time()) - 3600)
    assert post_event(client, completed, old).status_code == 400
    assert ledger.balance(bob) == 0


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=def", "t=1"])
def test_a_missing_or_malformed_signature_header_is_refused(
    client, bob, completed, stripe_webhook_secret, header
):
    assert post_event(client, completed, header).status_code == 400
    assert ledger.balance(bob) == 0


def test_a_body_that_is_not_utf8_is_refused_not_a_crash(client, stripe_webhook_secret):
    assert post_event(client, b"\xff\xfe{}").status_code == 400


def test_webhooks_without_a_configured_secret_are_refused(client, bob, completed):
    assert post_event(client, completed).status_code == 400
    assert ledger.balance(bob) == 0


def test_the_webhook_takes_only_post(client):
    assert client.get(WEBHOOK).status_code == 405


# --- Webhook: refunds -----------------------------------------------------------------------


def post_refund(client, event_id: str, refunded: int, **overrides):
    payload = stripe_event(
        "charge.refunded", charge_object(refunded=refunded, **overrides), event_id
    )
    response = post_event(client, payload)
    assert response.status_code == 200, response.content
    return response.json()["outcome"]


def test_a_full_refund_takes_the_credits_back(client, bob, paid):
    assert post_refund(client, "evt_r1", refunded=500) == "taken back"
    entry = LedgerEntry.objects.get(kind="refund")
    assert entry.amount == -50 and entry.uncollected == 0 and entry.balance_after == 0
    assert ledger.balance(bob) == 0
    assert ledger.check() == []


def test_partial_refunds_take_back_their_share_once(client, bob, paid):
    assert post_refund(client, "evt_r1", refunded=100) == "taken back"  # 1/5 of 500
    assert ledger.balance(bob) == 40
    assert post_refund(client, "evt_r1", refunded=100) == "replayed evt_r1"
    # A later event carries the cumulative amount refunded: only the new part is taken.
    assert post_refund(client, "evt_r2", refunded=100) == "nothing new to take back"
    assert post_refund(client, "evt_r3", refunded=500) == "taken back"
    assert ledger.balance(bob) == 0
    paid.refresh_from_db()
    assert paid.credits_refunded == 50 and paid.credits_unrecovered == 0


def test_a_refund_of_spent_credits_takes_what_is_left_and_records_the_rest(client, bob, paid):
    ledger.settle(ledger.reserve(bob, D(40), "req-big"))
    ledger.reserve(bob, D(2), "req-in-flight")  # held credits are not taken either
    assert post_refund(client, "evt_r1", refunded=500) == "taken back"
    entry = LedgerEntry.objects.get(kind="refund")
    assert entry.amount == -8 and entry.uncollected == 42
    paid.refresh_from_db()
    assert paid.credits_refunded == 50 and paid.credits_unrecovered == 42
    assert ledger.balance(bob) == 2
    assert ledger.check() == []


def test_a_refund_event_with_nothing_refunded_takes_nothing(client, bob, paid):
    assert post_refund(client, "evt_r0", refunded=0) == "nothing new to take back"
    assert ledger.balance(bob) == 50


def test_a_refund_of_an_unknown_charge_is_acknowledged(client, bob, paid):
    outcome = post_refund(client, "evt_r9", refunded=500, payment_intent="pi_someone_else")
    assert outcome == "no matching purchase"
    assert ledger.balance(bob) == 50


def test_the_full_flow_keeps_the_books_balanced(client, bob, paid):
    reservation = ledger.reserve(bob, D(1), "req-1")
    ledger.settle(reservation)
    post_refund(client, "evt_r1", refunded=250)
    assert ledger.balance(bob) == 24  # 50 - 1 - 25
    assert [e.kind for e in ledger.entries(bob)] == ["refund", "charge", "purchase"]
    assert ledger.check() == []
