"""Stripe: Checkout sessions for credit packs and the webhook events that pay for them.

The only module importing `stripe`. Payments are on when both `STRIPE_SECRET_KEY` and
`STRIPE_WEBHOOK_SECRET` are set (a checkout whose webhook cannot be verified would never
grant anything). Amounts stay integer cents as Stripe sends them.

Webhooks: the signature is verified first (HMAC-SHA256 of "{t}.{payload}", timestamps older
than `WEBHOOK_TOLERANCE_S` refused); then the event id is recorded in the same transaction
as the handler's ledger movement, so a replayed event is acknowledged without effect. A
purchase is also keyed on the Checkout session id (`ledger.purchase`), so the two events that
can announce one payment (`checkout.session.completed`, `...async_payment_succeeded`)
grant once between them.
"""

import json
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from billing import ledger
from billing.formatting import format_credits
from billing.models import CreditPack, Purchase, StripeEvent

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_S = 300
STRIPE_TIMEOUT_S = 20


class PaymentsNotConfiguredError(Exception):
    """Stripe keys are not set."""


class CheckoutError(Exception):
    """Stripe could not start a Checkout session; the message is safe to show."""


class WebhookError(Exception):
    """The webhook request is not a verifiable Stripe event (answer 400)."""


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_S),
        max_network_retries=1,
    )


def start_checkout(user, pack: CreditPack, *, success_url: str, cancel_url: str) -> str:
    """Create a Stripe Checkout session for `pack` and return the URL to send the buyer to.

    The session's metadata names the user, the pack and the credits offered; the webhook
    grants from it. Raises PaymentsNotConfiguredError, CheckoutError.
    """
    if not is_configured():
        raise PaymentsNotConfiguredError("Stripe keys are not set")
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.price_cents,
                    "product_data": {
                        "name": f"{pack.name}: {format_credits(pack.credits)} credits",
                    },
                },
            }
        ],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(user.pk),
        "customer_email": user.email,
        "metadata": {
            "user_id": str(user.pk),
            "pack_id": str(pack.pk),
            "credits": format_credits(pack.credits),
        },
    }
    try:
        session = _client().v1.checkout.sessions.create(params=params)
    except stripe.StripeError as exc:
        logger.warning("Stripe refused a checkout session for %s: %s", user.pk, exc)
        raise CheckoutError("The payment provider is not available; try again later.") from exc
    if not getattr(session, "url", None):
        raise CheckoutError("The payment provider did not return a checkout page.")
    return session.url


def _id(value) -> str:
    """Stripe sends related objects as an id, or as the object when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _pk(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _checkout_paid(event_id: str, session: dict) -> str:
    if session.get("payment_status") not in {"paid", "no_payment_required"}:
        # Delayed methods (bank debits) pay later: async_payment_succeeded grants then.
        return "awaiting payment"
    metadata = session.get("metadata") or {}
    user = get_user_model().objects.filter(pk=_pk(metadata.get("user_id"))).first()
    pack = CreditPack.objects.filter(pk=_pk(metadata.get("pack_id"))).first()
    if user is None or pack is None:
        logger.error("Stripe %s: session %s names no known user/pack", event_id, session.get("id"))
        return "unknown user or pack"
    try:
        credits = Decimal(metadata["credits"]) if "credits" in metadata else None
    except InvalidOperation:
        credits = None
    _, created = ledger.purchase(
        user,
        pack,
        session_id=_id(session),
        event_id=event_id,
        amount_cents=int(session.get("amount_total", pack.price_cents) or 0),
        currency=session.get("currency") or pack.currency,
        payment_intent=_id(session.get("payment_intent")),
        credits=credits,
    )
    return "granted" if created else "already granted"


def _charge_refunded(event_id: str, charge: dict) -> str:
    payment_intent = _id(charge.get("payment_intent"))
    record = (
        Purchase.objects.filter(payment_intent=payment_intent).first() if payment_intent else None
    )
    if record is None:
        logger.warning(
            "Stripe %s: refund of charge %s matches no purchase", event_id, charge.get("id")
        )
        return "no matching purchase"
    if charge.get("refunded"):
        refunded_cents = record.amount_cents
    else:
        charged = int(charge.get("amount") or 0)
        refunded = int(charge.get("amount_refunded") or 0)
        # Refunds are proportions of the charge; the purchase's own amount is the reference.
        refunded_cents = refunded * record.amount_cents // charged if charged else 0
    entry = ledger.refund(
        record,
        refunded_cents,
        reference=f"refund:{event_id}",
        cause=f"stripe {event_id} charge {charge.get('id', '')}",
    )
    return "nothing new to take back" if entry is None else "taken back"


HANDLERS: dict[str, Callable[[str, dict], str]] = {
    "checkout.session.completed": _checkout_paid,
    "checkout.session.async_payment_succeeded": _checkout_paid,
    "charge.refunded": _charge_refunded,
}


def handle_webhook(payload: bytes, signature: str | None) -> str:
    """Verify and apply one webhook delivery; returns what happened, for the log.

    Raises WebhookError (answer 400) for a missing or wrong signature, a stale timestamp or a
    body that is not an event. Unknown event types and replays return normally (answer 200).
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookError("Stripe webhooks are not configured")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_S
        )
    except stripe.SignatureVerificationError as exc:
        raise WebhookError("invalid Stripe-Signature") from exc
    except UnicodeDecodeError as exc:
        raise WebhookError("the body is not UTF-8") from exc
    try:
        event = json.loads(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
        obj = event["data"]["object"]
        if not isinstance(obj, dict):
            raise TypeError("data.object is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookError("the body is not a Stripe event") from exc

    handler = HANDLERS.get(event_type)
    if handler is None:
        return f"ignored {event_type}"
    with transaction.atomic():
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event_id, type=event_type)
        except IntegrityError:
            return f"replayed {event_id}"
        try:
            outcome = handler(event_id, obj)
        except (KeyError, TypeError, ValueError, InvalidOperation):
            # A signed event we cannot read is not worth Stripe's retries: log it, keep it.
            logger.exception("Stripe %s (%s): unexpected payload", event_id, event_type)
            outcome = "unreadable"
    logger.info("Stripe %s (%s): %s", event_id, event_type, outcome)
    return outcome
