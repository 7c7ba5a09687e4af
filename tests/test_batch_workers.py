"""Batches on PostgreSQL with real worker processes (`manage.py db_worker`, the queue's own
command) started by the test: two workers through a 20-item batch while
`release_stale_reservations` runs, the webhook verified with the `standardwebhooks` package;
and a worker killed with `kill -9` in the middle of an item."""

import os
import signal
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from standardwebhooks import Webhook

from batches import webhooks
from batches.models import Batch, BatchItem
from billing import ledger
from billing.models import CreditAccount
from removal.models import CallRecord
from tests.support_api import photo, photo_host
from tests.support_batches import (
    WAIT_S,
    api,
    charges_for,
    logs,
    on_postgres,
    submit,
    wait_until,
    webhook_receiver,
    workers,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not on_postgres(), reason="needs PostgreSQL (DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _loopback(settings):
    """The image hosts and the webhook receiver are local servers."""
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True


def finished(batch_id: str) -> bool:
    return Batch.objects.get(pk=batch_id).finished_at is not None


def test_two_workers_finish_a_20_item_batch_each_item_charged_once_and_sign_the_webhook(
    alice, alice_key, tmp_path
):
    files = {f"/{n}.jpg": photo("chelsea", (40 + n, 30)) for n in range(20)}
    before = ledger.balance(alice)
    with (
        photo_host(files) as host,
        webhook_receiver() as receiver,
        workers(tmp_path, 2, CUTOUT_BATCH_LEASE_S="30") as started,
    ):
        answer = submit(
            api(alice_key),
            {
                "items": [{"image.url": f"{host}/{n}.jpg"} for n in range(20)],
                "webhook_url": receiver.url,
            },
        )
        assert answer.status_code == 201, answer.content
        batch_id = answer.json()["id"]
        wait_until(
            lambda: BatchItem.objects.filter(batch_id=batch_id, state="succeeded").exists(),
            tmp_path,
            "a first item",
        )
        # Mid-batch: items in progress hold credits drawn from the batch hold; none is taken.
        call_command("release_stale_reservations", "--older-than-minutes", "0")
        wait_until(lambda: finished(batch_id), tmp_path, "the batch's end")
        assert receiver.arrived.wait(WAIT_S), logs(tmp_path)
        pids = {process.pid for process in started}

    batch = Batch.objects.get(pk=batch_id)
    assert batch.state == "completed"
    items = list(batch.items.all())
    assert [item.state for item in items] == ["succeeded"] * 20
    assert {int(item.worker.rsplit(":", 1)[1]) for item in items} == pids
    entries = charges_for(batch_id)
    assert len(entries) == 20 and len({entry.reference for entry in entries}) == 20
    assert all(entry.amount == -1 for entry in entries)
    assert ledger.balance(alice) == before - 20
    assert CreditAccount.objects.get(user=alice).held == 0
    records = CallRecord.objects.filter(channel="batch", user=alice)
    assert sorted(records.values_list("status", flat=True)) == [200] * 20
    assert sum(records.values_list("credits", flat=True)) == 20

    headers, body = receiver.received[0]
    event = Webhook(webhooks.secret_for(alice)).verify(body, headers)
    assert event["type"] == "batch.completed"
    assert event["data"]["batch_id"] == batch_id
    assert event["data"]["counts"]["succeeded"] == 20
    assert Decimal(str(event["data"]["credits"]["charged"])) == 20
    assert event["data"]["status_url"].endswith(f"/api/v2/batches/{batch_id}")
    assert batch.deliveries.get().delivered


def test_a_worker_killed_mid_item_leaves_it_finished_once_and_charged_once(
    alice, alice_key, tmp_path
):
    image = photo("chelsea", (48, 32))
    asked = threading.Event()
    let_go = threading.Event()
    gets = []

    class SlowOnce(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            gets.append(self.path)
            if len(gets) == 1:
                asked.set()
                let_go.wait(WAIT_S)  # the first worker dies while it waits here
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/photo.jpg"
    try:
        with workers(tmp_path, 2, CUTOUT_BATCH_LEASE_S="3") as started:
            answer = submit(api(alice_key), {"items": [{"image.url": url}]})
            assert answer.status_code == 201, answer.content
            batch_id = answer.json()["id"]
            assert asked.wait(WAIT_S), logs(tmp_path)
            holder = BatchItem.objects.get(batch_id=batch_id).worker
            pid = int(holder.rsplit(":", 1)[1])
            assert pid in {process.pid for process in started}
            os.kill(pid, signal.SIGKILL)
            let_go.set()
            wait_until(lambda: finished(batch_id), tmp_path, "the batch's end")
    finally:
        let_go.set()
        server.shutdown()
        server.server_close()

    item = BatchItem.objects.get(batch_id=batch_id)
    assert item.state == "succeeded" and item.attempts == 2
    assert int(item.worker.rsplit(":", 1)[1]) != pid
    assert len(gets) == 2
    assert [entry.amount for entry in charges_for(batch_id)] == [-1]
    assert CreditAccount.objects.get(user=alice).held == 0
