"""Billing fixtures: credit personas, packs, Stripe webhook signing and a Stripe stand-in server.

Registered in tests/conftest.py `pytest_plugins`.
"""

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing import ledger
from billing.models import CreditPack

# The `alice` persona's balance (conftest grants it through the ledger, like an operator).
ALICE_CREDITS = Decimal(100)
WEBHOOK_SECRET = "whsec_test_cutout_0123456789abcdef"
STRIPE_SECRET_KEY = "sk_test_cutout_0123456789abcdef"


def give_credits(user, amount: Decimal = ALICE_CREDITS, reference: str | None = None):
    """Grant `amount` credits the way an operator would (`grant_credits`); returns the user."""
    ledger.grant(user, amount, reference or f"persona:{user.email}:{amount}", cause="test persona")
    return user


def make_pack(**overrides) -> CreditPack:
    values = {
        "name": "Test pack",
        "credits": Decimal(50),
        "price_cents": 500,
        "currency": "usd",
        "validity_days": 30,
    }
    values.update(overrides)
    return CreditPack.objects.create(**values)


@pytest.fixture
def pack(db) -> CreditPack:
    return make_pack()


def sign_payload(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`, by Stripe's scheme: v1 = HMAC-SHA256 of
    "{t}.{payload}" under the endpoint secret."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    v1 = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}"


def stripe_event(event_type: str, obj: dict, event_id: str = "evt_test_1") -> bytes:
    """A Stripe event as Stripe sends it (the fields our handlers and the library read)."""
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


class StripeStandIn:
    """A local HTTP server answering `POST /v1/checkout/sessions` like Stripe does; it keeps
    each request's form fields and auth header so tests can check what was sent."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail_with: int | None = None
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                stand_in.requests.append(
                    {
                        "path": self.path,
                        "fields": fields,
                        "authorization": self.headers.get("Authorization", ""),
                    }
                )
                if stand_in.fail_with is not None:
                    status = stand_in.fail_with
                    reply = {"error": {"type": "api_error", "message": "stand-in failure"}}
                elif self.path == "/v1/checkout/sessions":
                    status = 200
                    number = len(stand_in.requests)
                    reply = {
                        "id": f"cs_test_{number}",
                        "object": "checkout.session",
                        "url": f"https://checkout.stripe.test/pay/cs_test_{number}",
                        "mode": fields.get("mode"),
                        "payment_status": "unpaid",
                        "status": "open",
                        "metadata": {
                            key[len("metadata[") : -1]: value
                            for key, value in fields.items()
                            if key.startswith("metadata[")
                        },
                    }
                else:
                    status = 404
                    reply = {"error": {"type": "invalid_request_error", "message": "no route"}}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_standin")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stripe_server(settings):
    """Stripe configured with test keys, its API base pointed at a local stand-in."""
    with StripeStandIn() as server:
        settings.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = server.url
        yield server


@pytest.fixture
def stripe_webhook_secret(settings) -> str:
    settings.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return WEBHOOK_SECRET
