"""GET /api/v2/account: Pixian's account endpoint, byte for byte where the spec fixes it."""

import base64
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import ledger
from billing.models import CreditAccount
from tests.conftest import make_key
from tests.support_billing import give_credits, make_pack

URL = "/api/v2/account"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def basic(key_id: str, secret: str) -> dict:
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


@pytest.fixture
def bob_key(bob) -> tuple[str, str]:
    return make_key(bob)


def test_a_new_account_answers_exactly_like_pixians_example(client, bob_key):
    response = client.get(URL, **basic(*bob_key))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == (
        b'{"creditPack":"none","state":"dormant","useBefore":"1970-01-01T00:00:00Z","credits":0}'
    )


def test_an_account_with_credits_is_active_until_use_before(client, alice, alice_key):
    body = client.get(URL, **basic(*alice_key)).json()
    assert body["state"] == "active"
    assert body["credits"] == 100 and isinstance(body["credits"], int)
    assert body["creditPack"] == "none"  # a grant without a pack names none
    assert TIME.match(body["useBefore"])
    use_before = CreditAccount.objects.get(user=alice).use_before
    assert body["useBefore"] == use_before.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "amount, text",
    [("0.25", b'"credits":0.25}'), ("0.000001", b'"credits":0.000001}'), ("7", b'"credits":7}')],
)
def test_fractional_credits_are_plain_json_numbers(client, bob, bob_key, amount, text):
    give_credits(bob, Decimal(amount))
    assert text in client.get(URL, **basic(*bob_key)).content


def test_credits_held_by_requests_in_progress_are_not_reported_as_spendable(client, bob, bob_key):
    give_credits(bob, Decimal(2))
    reservation = ledger.reserve(bob, Decimal("0.75"), "req-running")
    assert client.get(URL, **basic(*bob_key)).json()["credits"] == 1.25
    ledger.release(reservation)
    assert client.get(URL, **basic(*bob_key)).json()["credits"] == 2


def test_the_latest_pack_is_named(client, bob, bob_key):
    ledger.grant(bob, Decimal(10), "g1", make_pack(name="Starter kit"))
    ledger.grant(bob, Decimal(10), "g2", make_pack(name="Pro kit"))
    assert client.get(URL, **basic(*bob_key)).json()["creditPack"] == "Pro kit"


def test_lapsed_credits_make_the_account_dormant(client, bob, bob_key):
    ledger.grant(bob, Decimal(10), "g1", make_pack(name="Old"))
    lapsed_at = (timezone.now() - timedelta(days=2)).replace(microsecond=0)
    CreditAccount.objects.filter(user=bob).update(use_before=lapsed_at)
    body = client.get(URL, **basic(*bob_key)).json()
    assert body == {
        "creditPack": "Old",
        "state": "dormant",
        "useBefore": lapsed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credits": 0,
    }
    assert [e.kind for e in ledger.entries(bob)] == ["expiry", "grant"]
    assert ledger.check() == []


def test_a_valid_pack_with_no_credits_left_is_dormant(client, bob, bob_key):
    give_credits(bob, Decimal(1))
    ledger.settle(ledger.reserve(bob, Decimal(1), "req-last"))
    body = client.get(URL, **basic(*bob_key)).json()
    assert body["state"] == "dormant" and body["credits"] == 0
    assert body["useBefore"] != "1970-01-01T00:00:00Z"


def test_each_key_sees_only_its_own_account(client, alice, alice_key, bob_key):
    assert client.get(URL, **basic(*bob_key)).json()["credits"] == 0
    assert client.get(URL, **basic(*alice_key)).json()["credits"] == 100


def test_the_remove_bg_header_works_too(client, alice, alice_key):
    response = client.get(URL, HTTP_X_API_KEY=f"{alice_key[0]}:{alice_key[1]}")
    assert response.status_code == 200 and response.json()["credits"] == 100


def test_no_credentials_is_a_401_in_pixians_format(client, db):
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="Cutout"'
    assert response.json()["error"]["code"] == 4001
    assert response.json()["error"]["status"] == 401


def test_a_wrong_secret_is_a_401(client, bob_key):
    response = client.get(URL, **basic(bob_key[0], "x" * 32))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 4002


def test_a_logged_in_browser_session_is_not_an_api_credential(client, alice):
    client.force_login(alice)
    assert client.get(URL).status_code == 401


def test_other_methods_are_refused_in_pixians_format(client, alice_key):
    response = client.post(URL, **basic(*alice_key))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == 4050
