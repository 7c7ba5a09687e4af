"""Batch webhooks, signed as Standard Webhooks specifies (https://www.standardwebhooks.com/):
`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, keyed with the account's secret (`whsec_` + base64 of 24 random bytes,
shown on the API-keys page).

The body names the batch, its counts, its credits and its status URL, never a link that works
without the API key. Deliveries run as their own task, through the URL fetcher's address
policy (`safe_http.safe_client`: public addresses only, pinned, one deadline), and are
retried with back-off for about a day; every attempt is recorded (`WebhookDelivery`).
"""

import base64
import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta

import httpx
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from batches.models import Batch, WebhookDelivery, WebhookSecret
from billing.formatting import dumps
from removal import errors, fetch, safe_http
from removal.errors import RemovalError

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
TIMEOUT_S = 10.0
# Seconds before each retry: about a day in all (the last attempt is the 9th).
RETRY_DELAYS_S = (10, 60, 300, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
URL_CODES = fetch.UrlCodes(scheme=errors.WEBHOOK_URL_BAD, address=errors.WEBHOOK_URL_PRIVATE)


def secret_for(user: AbstractBaseUser) -> str:
    """The account's signing secret, made on first use."""
    existing = WebhookSecret.objects.filter(user=user).first()
    if existing is not None:
        return existing.secret
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
    try:
        with transaction.atomic():
            return WebhookSecret.objects.create(user=user, secret=secret).secret
    except IntegrityError:
        return WebhookSecret.objects.get(user=user).secret


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_url(url: str) -> None:
    """Refuse a webhook URL that is not http(s) (6006) or whose host resolves to a private,
    loopback or reserved address (6007), as the fetcher would refuse to connect to it."""
    checked = fetch.checked_url(url, "webhook_url", URL_CODES)
    try:
        safe_http.check_host(
            checked.host, TIMEOUT_S, allow_loopback=settings.CUTOUT_ALLOW_LOOPBACK_URLS
        )
    except safe_http.BlockedAddressError as exc:
        raise RemovalError(errors.WEBHOOK_URL_PRIVATE, f"webhook_url: {exc}.") from None
    except safe_http.HostNotFoundError as exc:
        raise RemovalError(errors.WEBHOOK_URL_BAD, f"webhook_url: {exc}.") from None


def payload(batch: Batch, event: str) -> dict:
    from batches import status

    summary = status.summary(batch)
    return {
        "type": event,
        "timestamp": timezone.now().isoformat(),
        "data": {
            "batch_id": str(batch.pk),
            "state": batch.state,
            "counts": summary["counts"],
            "credits": summary["credits"],
            "status_url": status.status_url(batch),
        },
    }


def event_for(batch: Batch) -> str:
    return "batch.completed" if batch.state == Batch.State.COMPLETED else "batch.failed"


def deliver(batch_id: str, attempt: int) -> bool:
    """One delivery attempt of the batch's event; schedules the next on failure. True when
    the receiver answered 2xx."""
    from batches import tasks

    batch = Batch.objects.select_related("user").get(pk=batch_id)
    event = event_for(batch)
    message_id = f"msg_{batch.pk.hex}"
    body = dumps(payload(batch, event)).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret_for(batch.user), message_id, timestamp, body),
        "user-agent": "Cutout webhooks",
    }
    status_code: int | None = None
    error = ""
    try:
        with safe_http.safe_client(
            TIMEOUT_S, allow_loopback=settings.CUTOUT_ALLOW_LOOPBACK_URLS
        ) as client:
            status_code = client.post(batch.webhook_url, content=body, headers=headers).status_code
    except safe_http.AddressError as exc:
        error = str(exc)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    delivered = status_code is not None and 200 <= status_code < 300
    WebhookDelivery.objects.create(
        batch=batch,
        event=event,
        message_id=message_id,
        attempt=attempt,
        status=status_code,
        error=error[:300],
        delivered=delivered,
    )
    if not delivered and attempt <= len(RETRY_DELAYS_S):
        delay = timedelta(seconds=RETRY_DELAYS_S[attempt - 1])
        tasks.queue_webhook(batch.pk, attempt + 1, run_after=timezone.now() + delay)
    elif not delivered:
        logger.warning("webhook for batch %s not delivered after %s attempts", batch.pk, attempt)
    return delivered
