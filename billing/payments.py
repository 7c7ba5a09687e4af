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

A checkout grants only when the session paid exactly the pack's price, in its currency, and
offered no more than the pack's credits; any other correctly signed event (absurd values, an
unreadable body) is recorded as rejected, answered 200 so Stripe does not retry it for days,
and logged as an error for the operator (docs/SECURITY.md, "Payments").
"""

import hashlib
import json
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DataError, IntegrityError, transaction

from billing import ledger
from billing.formatting import format_credits, parse_credits
from billing.models import CreditPack, Purchase, StripeEvent

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_S = 300
STRIPE_TIMEOUT_S = 20


class PaymentsNotConfiguredError(Exception):
    """Stripe keys are not set."""


class CheckoutError(Exception):
    """Stripe could not start a Checkout session; the message is safe to show."""


class WebhookError(Exception):
    """The webhook request is not signed by Stripe with our secret (answer 400)."""


class RejectedEventError(Exception):
    """A signed event that must not move credits (a price that is not the pack's, an offer
    beyond it, unknown ids): recorded as rejected, acknowledged, raised to the operator."""


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_S),
        max_network_retries=1,
    )


def start_checkout(
    user: AbstractBaseUser, pack: CreditPack, *, success_url: str, cancel_url: str
) -> str:
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


def _id(value: object) -> str:
    """Stripe sends related objects as an id, or as the object when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _pk(value: object) -> int | None:
    """A primary key from metadata; None for anything a database column could not hold."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _short(value: object) -> str:
    """A value from the event for a log line or an outcome, however large it is."""
    return f"{value!r:.40}"


def _checked_price(session: dict, pack: CreditPack) -> tuple[int, str]:
    """The session's amount and currency when they are exactly the pack's price; Cutout's
    sessions carry no tax, discounts or promotion codes, so there is no tolerance."""
    amount, currency = session.get("amount_total"), session.get("currency")
    if (
        type(amount) is not int
        or not isinstance(currency, str)
        or (amount, currency.lower()) != (pack.price_cents, pack.currency.lower())
    ):
        raise RejectedEventError(
            f"paid {_short(amount)} {_short(currency)}, but pack {pack.pk} costs "
            f"{pack.price_cents} {pack.currency}"
        )
    return amount, currency.lower()


def _offered_credits(metadata: dict, pack: CreditPack) -> Decimal:
    """The credits the session offered (written at checkout), else the pack's. An offer above
    the pack's credits now is refused: the price paid is checked against the pack as it is."""
    if "credits" not in metadata:
        return pack.credits
    try:
        credits = parse_credits(metadata["credits"])
    except ValueError:
        raise RejectedEventError(
            f"metadata.credits {_short(metadata['credits'])} is not a plain number"
        ) from None
    if not 0 < credits <= pack.credits:
        raise RejectedEventError(
            f"metadata.credits {credits} is not within pack {pack.pk}'s {pack.credits}"
        )
    return credits


def _stripe_id(value: object, what: str) -> str:
    text = _id(value)
    if len(text) > 255:
        raise RejectedEventError(f"{what} is longer than 255 characters")
    return text


def _checkout_paid(event_id: str, session: dict) -> str:
    if session.get("payment_status") not in {"paid", "no_payment_required"}:
        # Delayed methods (bank debits) pay later: async_payment_succeeded grants then.
        return "awaiting payment"
    metadata = session.get("metadata")
    if not isinstance(metadata, dict):
        raise RejectedEventError("the session has no metadata")
    user = get_user_model().objects.filter(pk=_pk(metadata.get("user_id"))).first()
    pack = CreditPack.objects.filter(pk=_pk(metadata.get("pack_id"))).first()
    if user is None or pack is None:
        raise RejectedEventError(f"session {_short(session.get('id'))} names no known user/pack")
    amount_cents, currency = _checked_price(session, pack)
    session_id = _stripe_id(session, "the session id")
    if not session_id:
        raise RejectedEventError("the session has no id")
    _, created = ledger.purchase(
        user,
        pack,
        session_id=session_id,
        event_id=event_id,
        amount_cents=amount_cents,
        currency=currency,
        payment_intent=_stripe_id(session.get("payment_intent"), "payment_intent"),
        credits=_offered_credits(metadata, pack),
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


def _read_event(payload: bytes) -> tuple[str, str, dict, str]:
    """The event's id, type and object, and what makes it unreadable ("" when nothing does).

    A signed body that is not a readable event gets an id made from its digest, so that it is
    recorded once, like any event.
    """
    try:
        event = json.loads(payload)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return _digest_id(payload), "", {}, "the body is not a JSON object"
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 100:
        return _digest_id(payload), "", {}, f"the event's type {_short(event_type)} is unusable"
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        return _digest_id(payload), event_type, {}, f"the event's id {_short(event_id)} is unusable"
    if not isinstance(obj, dict):
        return event_id, event_type, {}, "data.object is not an object"
    return event_id, event_type, obj, ""


def _digest_id(payload: bytes) -> str:
    return "unreadable:" + hashlib.sha256(payload).hexdigest()


def _apply(
    handler: Callable[[str, dict], str], event_id: str, event_type: str, obj: dict
) -> tuple[str, bool]:
    """Run `handler` in a savepoint; returns (outcome, rejected)."""
    try:
        with transaction.atomic():
            return handler(event_id, obj), False
    except RejectedEventError as exc:
        return f"rejected: {exc}", True
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation, DataError):
        # A signed event we cannot read reads no better on Stripe's retries: keep it, flag it.
        logger.exception("Stripe %s (%s): unexpected payload", event_id, event_type)
        return "rejected: unreadable payload", True


def handle_webhook(payload: bytes, signature: str | None) -> str:
    """Verify and apply one webhook delivery; returns what happened, for the log.

    Raises WebhookError (answer 400) for a missing or wrong signature or a stale timestamp.
    Everything correctly signed returns normally (answer 200), since Stripe retries anything
    else for days: unknown event types, replays, and events that must not grant (rejected:
    recorded with their reason, logged as errors for the operator).
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
    event_id, event_type, obj, unreadable = _read_event(payload)
    handler = HANDLERS.get(event_type)
    if handler is None and not unreadable:
        return f"ignored {event_type}"
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(event_id=event_id, type=event_type)
        except IntegrityError:
            return f"replayed {event_id}"
        if unreadable:
            outcome, rejected = f"rejected: {unreadable}", True
        else:
            outcome, rejected = _apply(handler, event_id, event_type, obj)
        record.outcome, record.rejected = outcome[:200], rejected
        record.save(update_fields=["outcome", "rejected"])
    if rejected:
        logger.error(
            "Stripe %s (%s) %s; nothing was granted. Listed in the admin under Stripe events.",
            event_id,
            event_type,
            outcome,
        )
    else:
        logger.info("Stripe %s (%s): %s", event_id, event_type, outcome)
    return outcome
