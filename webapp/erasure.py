"""Deleting an account at its owner's request: what is personal goes, the books stay.

In order: the person can no longer sign in and every key stops working (one transaction: the
address is replaced, the password made unusable, the account deactivated, its API keys and
their access tokens deleted, so the keys are refused as unknown); the spendable credits are
forfeited in one ledger entry (`ledger.close`), so the ledger, kept as the accounting record
of an anonymous account, still balances; then the stored files and the rows that describe
use go: uploads (original, alpha, preview), improvement submissions, batches with their
inputs and results, stored API answers and the call records.

The user row stays (anonymised) because the credit account and its ledger hang off it. A
running batch is waited for: its workers hold credits and write files (AccountBusyError).
"""

import logging
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction

from batches.models import Batch, WebhookSecret
from billing import ledger
from removal import uploads
from removal.models import AccessToken, ApiKey, CallRecord, IdempotentRequest, Improvement
from webapp.models import User

logger = logging.getLogger(__name__)

DELETED_DOMAIN = "deleted.invalid"


class AccountBusyError(Exception):
    """Work is still running for the account (a batch); it cannot be deleted yet."""


@dataclass(frozen=True)
class Erased:
    """What `delete_account` removed (for the log and the tests)."""

    keys: int
    uploads: int
    files: int
    records: int


def anonymous_email(user: User) -> str:
    return f"deleted-{user.pk}@{DELETED_DOMAIN}"


def delete_account(user: User) -> Erased:
    """Delete `user`'s personal data and stored files; keep the ledger, anonymised and
    balanced. Raises AccountBusyError while one of its batches runs."""
    if Batch.objects.filter(user=user, state=Batch.State.RUNNING).exists():
        raise AccountBusyError("A batch is still running: wait for it to finish.")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.email = anonymous_email(locked)
        locked.first_name = locked.last_name = ""
        locked.is_active = locked.is_staff = locked.is_superuser = False
        locked.last_login = None
        locked.set_unusable_password()
        locked.save()
        # Deleted, not only revoked: a later try with a revoked key would still be recorded
        # against its owner; an unknown key is refused without a trace of the account.
        AccessToken.objects.filter(api_key__user=user).delete()
        deleted_keys = ApiKey.objects.filter(user=user).delete()[0]
    ledger.close(user)
    deleted_uploads = sum(uploads.delete_upload(u) for u in user.uploads.all())
    files = 0
    for improvement in Improvement.objects.filter(user=user):
        if Improvement.objects.filter(pk=improvement.pk).delete()[0]:
            improvement.image.delete(save=False)
            files += 1
    for batch in Batch.objects.filter(user=user):
        for item in batch.items.exclude(result_name="", input_name=""):
            for name in (item.result_name, item.input_name):
                if name:
                    default_storage.delete(name)
                    files += 1
        batch.delete()
    WebhookSecret.objects.filter(user=user).delete()
    IdempotentRequest.objects.filter(user=user).delete()
    records = CallRecord.objects.filter(user=user).delete()[0]
    erased = Erased(deleted_keys, deleted_uploads, files, records)
    logger.info("account %s deleted by its owner: %s", user.pk, erased)
    return erased
