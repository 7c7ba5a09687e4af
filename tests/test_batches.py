"""Batches in one process (issue 23): submission checks, money, results, cancel, retention.

Real views through Django's test client, the real engine (u2netp), ledger and storage; the
queue's tickets are run here by calling the worker's own function (`work.work_next`), so
these run on SQLite too. tests/test_batch_workers.py runs real worker processes on PostgreSQL.
"""

import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from batches import work
from batches.models import Batch, BatchItem
from billing import ledger
from billing.models import CreditAccount, Reservation
from removal import errors
from removal.models import CallRecord
from tests.conftest import make_key, make_user
from tests.support_api import photo, photo_host, upload
from tests.support_batches import (
    BATCHES,
    api,
    charged_total,
    charges_for,
    run_tickets,
    submit,
)
from tests.support_billing import give_credits


@pytest.fixture
def loopback(settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True


@pytest.fixture
def photos():
    files = {f"/{n}.jpg": photo("chelsea", (48, 32)) for n in range(4)}
    with photo_host(files) as base:
        yield base


def held(user) -> Decimal:
    return CreditAccount.objects.get(user=user).held


def test_a_json_batch_runs_each_item_charged_once_and_a_bad_download_fails_alone(
    alice, alice_key, loopback, photos
):
    client = api(alice_key)
    before = ledger.balance(alice)
    answer = submit(
        client,
        {
            "options": {"output.format": "png"},
            "items": [
                {"image.url": f"{photos}/0.jpg"},
                {"image.url": f"{photos}/missing.jpg"},
                {"image.url": f"{photos}/2.jpg", "options": {"output.format": "jpeg"}},
            ],
        },
    )
    assert answer.status_code == 201, answer.content
    batch_id = answer.json()["id"]
    assert answer.json()["state"] == "running"
    assert held(alice) == 3

    assert run_tickets() == 3
    status = client.get(f"{BATCHES}/{batch_id}").json()
    assert status["state"] == "completed"
    assert status["counts"]["succeeded"] == 2 and status["counts"]["failed"] == 1
    failed = status["items"][1]
    assert failed["state"] == "failed" and failed["error"]["code"] == errors.URL_FAILED
    assert failed["credits"] == 0
    assert status["credits"] == {"charged": 2, "held": 0}
    assert charged_total(batch_id) == 2 and len(charges_for(batch_id)) == 2
    assert ledger.balance(alice) == before - 2
    assert held(alice) == 0

    png = client.get(f"{BATCHES}/{batch_id}/items/0")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png["X-Credits-Charged"] == "1" and png["X-Input-Size"] == "48 32"
    jpeg = client.get(f"{BATCHES}/{batch_id}/items/2")
    assert jpeg["Content-Type"] == "image/jpeg"
    none = client.get(f"{BATCHES}/{batch_id}/items/1")
    assert none.status_code == 404 and none.json()["error"]["code"] == errors.BATCH_NO_RESULT

    zipped = client.get(f"{BATCHES}/{batch_id}/results.zip")
    assert zipped.streaming and zipped["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content)))
    assert sorted(archive.namelist()) == ["0.png", "2.jpg"]
    assert archive.read("0.png") == png.getvalue()

    records = CallRecord.objects.filter(channel=CallRecord.Channel.BATCH).order_by("pk")
    assert [r.status for r in records] == [200, 400, 200]
    assert [r.credits for r in records] == [1, 0, 1]


def test_a_bad_item_is_refused_at_submission_with_its_index_and_nothing_is_held(
    alice, alice_key, loopback, photos
):
    client = api(alice_key)
    answer = submit(
        client,
        {
            "items": [
                {"image.url": f"{photos}/0.jpg"},
                {"image.url": f"{photos}/1.jpg", "options": {"output.format": "gif"}},
            ]
        },
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == errors.BAD_OUTPUT_FORMAT and error["message"].startswith("items[1]")
    for body, code, where in [
        ({"items": [{"image.url": "ftp://example.com/a.jpg"}]}, errors.URL_SCHEME, "items[0]"),
        ({"items": [{"image.url": "http://10.1.2.3/a.jpg"}]}, errors.URL_ADDRESS, "items[0]"),
        ({"items": [{}]}, errors.NO_IMAGE, "items[0]"),
        (
            {"items": [{"image.url": "https://example.com/a.jpg", "options": {"test": 1}}]},
            errors.BATCH_ITEM_TEST,
            "items[0]",
        ),
    ]:
        refused = submit(client, body)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["code"] == code, body
        assert refused.json()["error"]["message"].startswith(where)
    assert submit(client, {"items": []}).json()["error"]["code"] == errors.BATCH_EMPTY
    assert submit(client, {"item": []}).json()["error"]["code"] == errors.BATCH_BODY
    too_many = {"items": [{"image.url": "https://example.com/a.jpg"}] * 1001}
    assert submit(client, too_many).json()["error"]["code"] == errors.BATCH_TOO_MANY_ITEMS
    assert Batch.objects.count() == 0 and held(alice) == 0


def test_a_batch_larger_than_the_balance_is_refused_with_nothing_held(db, photos, loopback):
    carol = give_credits(make_user("carol@example.com"), Decimal(2))
    client = api(make_key(carol))
    items = [{"image.url": f"{photos}/{n}.jpg"} for n in range(3)]
    answer = submit(client, {"items": items})
    assert answer.status_code == 402
    assert answer.json()["error"]["code"] == errors.NOT_ENOUGH_CREDITS
    assert "3 items" in answer.json()["error"]["message"]
    assert Batch.objects.count() == 0 and not Reservation.objects.exists()
    assert held(carol) == 0 and ledger.balance(carol) == 2


def test_a_test_batch_is_free_and_limited_in_size(alice, alice_key, loopback, photos, settings):
    settings.CUTOUT_BATCH_TEST_ITEMS = 2
    client = api(alice_key)
    items = [{"image.url": f"{photos}/{n}.jpg"} for n in range(3)]
    refused = submit(client, {"options": {"test": True}, "items": items})
    assert refused.json()["error"]["code"] == errors.BATCH_TEST_TOO_MANY
    answer = submit(client, {"options": {"test": "true"}, "items": items[:2]})
    assert answer.status_code == 201 and held(alice) == 0
    run_tickets()
    batch_id = answer.json()["id"]
    status = client.get(f"{BATCHES}/{batch_id}").json()
    assert status["counts"]["succeeded"] == 2 and status["credits"]["charged"] == 0
    result = client.get(f"{BATCHES}/{batch_id}/items/0")
    assert result["X-Credits-Charged"] == "0" and result["X-Credits-Calculated"] == "1"
    assert not charges_for(batch_id)


def test_multipart_batches_wait_for_more_files_then_start(alice, alice_key):
    client = api(alice_key)
    first = client.post(
        BATCHES, {"image": [upload(photo("chelsea", (40, 30))) for _ in range(2)], "test": "true"}
    )
    assert first.status_code == 201, first.content
    batch_id = first.json()["id"]
    assert first.json()["state"] == "open" and first.json()["counts"]["total"] == 2
    assert run_tickets() == 0
    more = client.post(
        f"{BATCHES}/{batch_id}/items", {"image": [upload(photo("coffee", (40, 30)))]}
    )
    assert more.status_code == 200 and more.json()["counts"]["total"] == 3
    started = client.post(f"{BATCHES}/{batch_id}/start")
    assert started.status_code == 200 and started.json()["state"] == "running"
    late = client.post(f"{BATCHES}/{batch_id}/items", {"image": [upload(photo())]})
    assert late.status_code == 409 and late.json()["error"]["code"] == errors.BATCH_NOT_OPEN
    assert run_tickets() == 3
    assert client.get(f"{BATCHES}/{batch_id}").json()["counts"]["succeeded"] == 3


def test_cancel_stops_what_has_not_started_and_releases_the_hold(
    alice, alice_key, loopback, photos
):
    client = api(alice_key)
    items = [{"image.url": f"{photos}/{n}.jpg"} for n in range(3)]
    batch_id = submit(client, {"items": items}).json()["id"]
    assert work.work_next()  # one item done and charged
    cancelled = client.delete(f"{BATCHES}/{batch_id}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["counts"] == {
        "queued": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 2,
        "total": 3,
    }
    assert run_tickets() == 0
    assert charged_total(batch_id) == 1 and held(alice) == 0
    again = client.delete(f"{BATCHES}/{batch_id}")
    assert again.status_code == 409 and again.json()["error"]["code"] == errors.BATCH_FINISHED


def test_another_account_cannot_read_cancel_or_download_a_batch(alice, alice_key, loopback, photos):
    batch_id = submit(api(alice_key), {"items": [{"image.url": f"{photos}/0.jpg"}]}).json()["id"]
    run_tickets()
    bob = give_credits(make_user("bob@example.com"))
    other = api(make_key(bob))
    for method, path in [
        ("get", ""),
        ("delete", ""),
        ("get", "/items/0"),
        ("get", "/results.zip"),
        ("post", "/start"),
        ("post", "/items"),
    ]:
        answer = getattr(other, method)(f"{BATCHES}/{batch_id}{path}")
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error"]["code"] == errors.NOT_FOUND
    assert Batch.objects.get(pk=batch_id).state == "completed"
    assert api(alice_key).get(f"{BATCHES}/{batch_id}/items/0").status_code == 200


def test_the_api_needs_the_key(db):
    from django.test import Client

    answer = Client().get(f"{BATCHES}/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 401 and answer["WWW-Authenticate"].startswith("Basic")


def test_a_webhook_url_to_a_private_address_is_refused(alice, alice_key, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = False
    client = api(alice_key)
    items = [{"image.url": "https://example.com/a.jpg"}]
    for url in ["http://127.0.0.1:9/hook", "http://10.0.0.5/hook", "http://[::1]/hook"]:
        answer = submit(client, {"items": items, "webhook_url": url})
        assert answer.status_code == 400, url
        assert answer.json()["error"]["code"] == errors.WEBHOOK_URL_PRIVATE
    bad = submit(client, {"items": items, "webhook_url": "file:///etc/passwd"})
    assert bad.json()["error"]["code"] == errors.WEBHOOK_URL_BAD
    assert Batch.objects.count() == 0


def test_an_idempotency_key_on_submit_makes_one_batch(alice, alice_key, loopback, photos):
    client = api(alice_key)
    body = {"items": [{"image.url": f"{photos}/0.jpg"}, {"image.url": f"{photos}/1.jpg"}]}
    first = submit(client, body, HTTP_IDEMPOTENCY_KEY="batch-1")
    again = submit(client, body, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Batch.objects.count() == 1 and held(alice) == 2
    other = submit(client, {"items": body["items"][:1]}, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert other.status_code == 422
    run_tickets()


def test_a_worker_that_died_holding_an_item_leaves_it_charged_once(
    alice, alice_key, loopback, photos, settings
):
    """The item's hold drawn, its worker gone: the lease runs out, the item is queued again
    under the same ledger reference, and the next worker settles that one hold."""
    client = api(alice_key)
    batch_id = submit(client, {"items": [{"image.url": f"{photos}/0.jpg"}]}).json()["id"]
    item = work.claim_next()
    batch = Batch.objects.get(pk=batch_id)
    drawn = ledger.reserve_from_hold(batch.hold, Decimal(1), work.reference(batch.pk, item))
    BatchItem.objects.filter(pk=item.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    ledger.release_stale(timedelta(0))  # a batch's holds are not stale: the batch brings them back
    assert Reservation.objects.get(pk=drawn.pk).status == "held"
    work.watch_lease(item.pk, item.attempts)
    assert BatchItem.objects.get(pk=item.pk).state == "queued"
    assert run_tickets() == 1
    finished = BatchItem.objects.get(pk=item.pk)
    assert finished.state == "succeeded" and finished.attempts == 2
    assert Reservation.objects.get(pk=drawn.pk).status == "settled"
    assert len(charges_for(batch_id)) == 1 and charged_total(batch_id) == 1
    assert held(alice) == 0


def test_release_stale_reservations_never_takes_a_batch_hold(alice, alice_key, loopback, photos):
    client = api(alice_key)
    items = [{"image.url": f"{photos}/{n}.jpg"} for n in range(2)]
    batch_id = submit(client, {"items": items}).json()["id"]
    call_command("release_stale_reservations", "--older-than-minutes", "0")
    assert held(alice) == 2
    assert Reservation.objects.get(reference=f"batch:{batch_id}").status == "held"
    assert run_tickets() == 2
    assert charged_total(batch_id) == 2 and held(alice) == 0


def test_purge_results_deletes_batch_results_past_retention(
    alice, alice_key, loopback, photos, storage
):
    """On local files and on the S3 server (tests/support_s3.py)."""
    client = api(alice_key)
    batch_id = submit(client, {"items": [{"image.url": f"{photos}/0.jpg"}]}).json()["id"]
    run_tickets()
    assert client.get(f"{BATCHES}/{batch_id}/items/0").status_code == 200
    assert storage.names(), "the result is stored"
    call_command("purge_results")
    assert client.get(f"{BATCHES}/{batch_id}/items/0").status_code == 200
    Batch.objects.filter(pk=batch_id).update(finished_at=timezone.now() - timedelta(hours=25))
    out = io.StringIO()
    call_command("purge_results", stdout=out)
    assert "1 batch result" in out.getvalue()
    assert client.get(f"{BATCHES}/{batch_id}/items/0").status_code == 404
    assert client.get(f"{BATCHES}/{batch_id}").json()["counts"]["succeeded"] == 1
    assert storage.names() == []


def test_an_item_past_the_accounts_stored_results_cap_fails_uncharged(
    alice, alice_key, loopback, photos, settings
):
    settings.CUTOUT_BATCH_MAX_STORED_MB = 0
    client = api(alice_key)
    batch_id = submit(client, {"items": [{"image.url": f"{photos}/0.jpg"}]}).json()["id"]
    run_tickets()
    item = client.get(f"{BATCHES}/{batch_id}").json()["items"][0]
    assert item["error"]["code"] == errors.BATCH_STORAGE_FULL
    assert charged_total(batch_id) == 0 and held(alice) == 0


def test_the_webhook_secret_is_on_the_api_keys_page(alice):
    from django.test import Client

    from batches import webhooks

    web = Client()
    web.force_login(alice)
    page = web.get("/account/keys/")
    assert webhooks.secret_for(alice) in page.content.decode()
    assert json.dumps(webhooks.secret_for(alice)).startswith('"whsec_')


def test_workers_take_items_round_robin_across_accounts(alice, alice_key):
    items = [{"image.url": f"https://example.com/{n}.jpg"} for n in range(3)]
    submit(api(alice_key), {"items": items})
    bob = give_credits(make_user("bob@example.com"))
    submit(api(make_key(bob)), {"items": items[:2]})
    order = [work.claim_next().batch.user for _ in range(5)]
    assert order == [alice, bob, alice, bob, alice]
    assert work.claim_next() is None


def test_a_webhook_that_fails_is_recorded_and_retried_then_verifies(
    alice, alice_key, loopback, photos
):
    from django_tasks_db.models import DBTaskResult
    from standardwebhooks import Webhook

    from batches import webhooks
    from tests.support_batches import webhook_receiver

    with webhook_receiver(status=500) as failing:
        body = {"items": [{"image.url": f"{photos}/missing.jpg"}], "webhook_url": failing.url}
        batch_id = submit(api(alice_key), body).json()["id"]
        run_tickets()  # the one item fails on its download: no inference, the batch failed
        assert webhooks.deliver(batch_id, 1) is False
    queued = DBTaskResult.objects.filter(task_path__endswith="deliver_webhook")
    retries = [task for task in queued if task.args_kwargs["args"] == [batch_id, 2]]
    assert len(retries) == 1 and retries[0].run_after > timezone.now()
    with webhook_receiver() as receiver:
        Batch.objects.filter(pk=batch_id).update(webhook_url=receiver.url)
        assert webhooks.deliver(batch_id, 2) is True
    headers, sent = receiver.received[0]
    event = Webhook(webhooks.secret_for(alice)).verify(sent, headers)
    assert event["type"] == "batch.failed" and event["data"]["counts"]["failed"] == 1
    assert event["data"]["credits"] == {"charged": 0, "held": 0}
    deliveries = Batch.objects.get(pk=batch_id).deliveries.order_by("attempt")
    assert [(d.attempt, d.status, d.delivered) for d in deliveries] == [
        (1, 500, False),
        (2, 200, True),
    ]
    assert len({d.message_id for d in deliveries}) == 1
