"""The customer's own data through Django's test client, with the real views, engine (u2netp),
ledger and storage: the dashboard's numbers and charts against the call records and the
ledger; the history; deleting an upload and the account; every page, file and action tried
as another user and as a visitor. The tests that touch stored files run on local files and
on an S3-compatible server (moto's server mode on 127.0.0.1, tests/support_s3.py)."""

import io
import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Sum
from django.test import Client
from django.utils import timezone
from PIL import Image

from billing import ledger
from billing.formatting import format_credits
from billing.models import LedgerEntry
from removal import errors, previews, uploads, usage
from removal.models import ApiKey, CallRecord, Upload
from tests.conftest import PASSWORD, make_key, make_user
from tests.support_api import PIXIAN_PATH, basic, photo
from tests.support_billing import ALICE_CREDITS
from tests.support_s3 import StorageUnderTest
from webapp import charts, erasure
from webapp.models import User

CREATE = "/remove/uploads/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def website_upload(client: Client, name: str = "cat.jpg", **fields) -> Upload:
    image = SimpleUploadedFile(name, photo(), "image/jpeg")
    response = client.post(CREATE, {"image": image, **fields})
    assert response.status_code == 200, response.content[:300]
    return Upload.objects.get(public_id=response["X-Upload-Id"])


def api_call(client: Client, key: tuple[str, str], **fields):
    image = SimpleUploadedFile("api.jpg", photo(), "image/jpeg")
    return client.post(PIXIAN_PATH, {"image": image, **fields}, HTTP_AUTHORIZATION=basic(*key))


def usage_data(client: Client) -> dict:
    page = client.get("/account/")
    assert page.status_code == 200
    text = page.content.decode()
    start = text.index('<script id="usage-data" type="application/json">') + 48
    return json.loads(text[start : text.index("</script>", start)])


def test_the_dashboard_shows_the_ledgers_numbers_and_charts_the_call_records(alice, alice_key):
    client = client_for(alice)
    web = Client()
    assert api_call(web, alice_key).status_code == 200
    assert api_call(web, alice_key, test="true").status_code == 200
    assert api_call(web, alice_key, **{"output.format": "nonsense"}).status_code == 400
    website_upload(client)
    website_upload(client, name="dog.jpg", test="true")

    page = client.get("/account/")
    summary = ledger.account_summary(alice)
    assert summary.credits == ALICE_CREDITS - 2
    assert f'data-testid="credits">{format_credits(summary.credits)}<' in page.content.decode()
    assert "Buy credits" in page.content.decode()
    # The failure, its code and what the one error table says it means.
    assert str(errors.BAD_OUTPUT_FORMAT) in page.content.decode()
    assert errors.ERRORS[errors.BAD_OUTPUT_FORMAT].message in page.content.decode()

    data = usage_data(client)
    today = timezone.now().date().isoformat()
    assert len(data["days"]) == 30 and data["days"][-1] == today
    by_key = {s["key"]: s for s in data["series"]}
    records = CallRecord.objects.filter(user=alice)
    for channel in ("api", "website"):
        for test in (False, True):
            rows = records.filter(channel=channel, test=test)
            series = by_key[usage.series_key(channel, test)]
            assert sum(series["calls"]) == rows.count() > 0
            assert series["calls"][-1] == rows.count()
            credits = rows.aggregate(total=Sum("credits"))["total"] or Decimal(0)
            assert sum(Decimal(c) for c in series["credits"]) == credits
    # The charts' credits are the ledger's charges.
    charged = -LedgerEntry.objects.filter(account__user=alice, kind="charge").aggregate(
        total=Sum("amount")
    )["total"]
    charted = sum(Decimal(c) for s in data["series"] for c in s["credits"])
    assert charted == charged == Decimal(2)


def test_the_charts_count_repeats_and_leave_out_what_is_older_than_30_days(alice, alice_key):
    now = timezone.now()
    key = ApiKey.objects.get(key_id=alice_key[0])
    common = {"user": alice, "api_key": key, "wire_format": "pixian", "endpoint": "pixian"}
    old = now - timedelta(days=31)
    CallRecord.objects.create(created_at=old, status=200, credits=1, channel="api", **common)
    recent = now - timedelta(days=3)
    CallRecord.objects.create(created_at=recent, status=429, repeats=4, channel="api", **common)
    daily = usage.daily_usage(alice, now=now)
    api = next(s for s in daily.series if s.key == "api-production")
    assert api.total_calls == 5 and api.calls[-4] == 5
    assert api.total_credits == 0


@pytest.mark.parametrize("credits, words", [(Decimal(3), "Low balance"), (Decimal(0), "No")])
def test_a_low_or_empty_balance_is_announced(db, credits, words):
    from tests.support_billing import give_credits

    user = make_user("low@example.com")
    if credits:
        give_credits(user, credits)
    page = client_for(user).get("/account/")
    assert words in page.content.decode().split('data-testid="balance-notice">')[1][:200]


def test_history_lists_uploads_and_api_calls_and_says_what_is_kept(
    alice, alice_key, storage: StorageUnderTest, settings
):
    client = client_for(alice)
    upload = website_upload(client, **{"background.color": "#336699"})
    assert api_call(Client(), alice_key).status_code == 200
    page = client.get("/account/history/").content.decode()
    assert upload.public_id in page and "background.color=#336699" in page
    assert "Paid: 1 credit" in page
    assert f"Kept for {settings.CUTOUT_UPLOAD_RETENTION_HOURS} hours" in page
    assert "does not store the images" in page
    assert f"kept for {settings.CUTOUT_CALL_RECORD_RETENTION_DAYS} days" in page
    record = CallRecord.objects.get(user=alice, channel="api")
    assert page.count('data-testid="api-call"') == 1 and record.endpoint in page
    assert alice_key[0] in page and alice_key[1] not in page

    balance = ledger.balance(alice)
    thumb = client.get(f"/account/history/{upload.public_id}/thumbnail/")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    small = Image.open(io.BytesIO(b"".join(thumb.streaming_content)))
    assert small.format == "JPEG" and max(small.size) <= previews.THUMBNAIL_SIDE
    upload.refresh_from_db()
    stored = upload.thumbnail.name
    assert stored and client.get(f"/account/history/{upload.public_id}/thumbnail/").status_code
    upload.refresh_from_db()
    assert upload.thumbnail.name == stored, "made once, then served from storage"
    again = client.get(f"/account/history/{upload.public_id}/download/")
    # An opaque background makes `output.format=auto` a JPEG, as on the page.
    assert again.status_code == 200 and again["Content-Type"] == "image/jpeg"
    assert 'filename="cat-cutout.jpg"' in again["Content-Disposition"]
    assert ledger.balance(alice) == balance, "downloading again is free"
    # The last options are the ones the download uses.
    render = client.post(f"/remove/uploads/{upload.public_id}/render/", {"output.format": "png"})
    assert render.status_code == 200
    upload.refresh_from_db()
    assert upload.options == {"output.format": "png"}
    again = client.get(f"/account/history/{upload.public_id}/download/")
    assert again["Content-Type"] == "image/png"
    assert len(storage.names()) == 3  # the original, its alpha and the thumbnail


def test_a_test_mode_upload_downloads_again_in_test_mode_for_nothing(alice):
    client = client_for(alice)
    upload = website_upload(client, test="true")
    again = client.get(f"/account/history/{upload.public_id}/download/")
    assert again.status_code == 200
    assert ledger.balance(alice) == ALICE_CREDITS
    upload.refresh_from_db()
    assert not upload.paid


def test_deleting_an_upload_removes_its_files_at_once(alice, storage: StorageUnderTest):
    client = client_for(alice)
    upload = website_upload(client)
    kept = website_upload(client, name="other.jpg")
    assert client.get(f"/account/history/{upload.public_id}/thumbnail/").status_code == 200
    assert len(storage.names()) == 5  # two originals and alphas, one thumbnail
    response = client.post(f"/account/history/{upload.public_id}/delete/")
    assert response.status_code == 302 and response["Location"] == "/account/history/"
    assert not Upload.objects.filter(pk=upload.pk).exists()
    assert sorted(storage.names()) == sorted([kept.original.name, kept.alpha.name])
    assert client.get(f"/remove/uploads/{upload.public_id}/original/").status_code == 404
    assert client.post(f"/account/history/{upload.public_id}/delete/").status_code == 404


def test_a_purge_that_finds_its_uploads_gone_deletes_nothing_more(alice, storage: StorageUnderTest):
    client = client_for(alice)
    stale = website_upload(client, name="stale.jpg")
    kept = website_upload(client, name="kept.jpg")
    Upload.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    # Another host's purge took it between this host's read and its delete.
    assert uploads.delete_upload(stale) is True
    assert uploads.delete_upload(stale) is False
    assert uploads.purge_expired() == 0
    assert sorted(storage.names()) == sorted([kept.original.name, kept.alpha.name])


@pytest.mark.postgres
@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_purging_on_several_hosts_at_once_deletes_each_upload_once(
    alice, storage: StorageUnderTest
):
    client = client_for(alice)
    for i in range(4):
        website_upload(client, name=f"p{i}.jpg")
    Upload.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    counts: list[int] = []
    barrier = threading.Barrier(3)

    def purge() -> None:
        from django.db import connection

        barrier.wait()
        try:
            counts.append(uploads.purge_expired())
        finally:
            connection.close()

    threads = [threading.Thread(target=purge) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 4 and len(counts) == 3
    assert not Upload.objects.exists()
    assert storage.names() == []


def test_deleting_the_account_revokes_keys_deletes_files_and_keeps_the_ledger_balanced(
    alice, alice_key, storage: StorageUnderTest
):
    client = client_for(alice)
    website_upload(client)
    assert api_call(Client(), alice_key).status_code == 200
    entries_before = LedgerEntry.objects.filter(account__user=alice).count()
    left = ledger.balance(alice)
    assert left == ALICE_CREDITS - 2
    assert storage.names()

    asked = client.get("/account/delete/")
    assert asked.status_code == 200 and "cannot be undone" in asked.content.decode()
    wrong = client.post("/account/delete/", {"password": "not-it"})
    assert wrong.status_code == 200 and "not your password" in wrong.content.decode()
    assert User.objects.get(pk=alice.pk).is_active

    done = client.post("/account/delete/", {"password": PASSWORD})
    assert done.status_code == 200 and "account is deleted" in done.content.decode()
    user = User.objects.get(pk=alice.pk)
    assert user.email == erasure.anonymous_email(user) and not user.is_active
    assert not user.has_usable_password()
    assert storage.names() == []
    assert not Upload.objects.filter(user=user).exists()
    assert not CallRecord.objects.filter(user=user).exists()
    assert not ApiKey.objects.filter(user=user).exists()
    refused = api_call(Client(), alice_key)
    assert refused.status_code == 401
    assert not CallRecord.objects.filter(user=user).exists(), "a refused key records nothing"
    # The ledger: every entry kept, the remaining credits forfeited in one more, balanced.
    entries = LedgerEntry.objects.filter(account__user=user)
    assert entries.count() == entries_before + 1
    assert entries.first().kind == "expiry" and entries.first().amount == -left
    assert ledger.balance(user) == 0 and ledger.check() == []
    # Signed out, and the old session no longer works.
    assert client.get("/account/").status_code == 302
    assert Client().login(email="alice@example.com", password=PASSWORD) is False


def test_an_account_with_a_running_batch_is_not_deleted_until_it_ends(alice):
    from batches.models import Batch

    Batch.objects.create(user=alice, state=Batch.State.RUNNING)
    client = client_for(alice)
    response = client.post("/account/delete/", {"password": PASSWORD}, follow=True)
    assert "batch is still running" in response.content.decode()
    assert User.objects.get(pk=alice.pk).is_active


def test_nobody_else_reaches_an_accounts_pages_files_or_actions(alice, bob, alice_key):
    upload = website_upload(client_for(alice))
    assert api_call(Client(), alice_key).status_code == 200
    own = [
        f"/account/history/{upload.public_id}/thumbnail/",
        f"/account/history/{upload.public_id}/download/",
        f"/remove/uploads/{upload.public_id}/original/",
    ]
    bob_client = client_for(bob)
    visitor = Client()
    for url in own:
        assert bob_client.get(url).status_code == 404, url
        assert visitor.get(url).status_code in (302, 404), url
    for client in (bob_client, visitor):
        assert client.post(f"/account/history/{upload.public_id}/delete/").status_code in (
            302,
            404,
        )
        assert client.post(
            f"/remove/uploads/{upload.public_id}/render/", {"test": "true"}
        ).status_code in (401, 403, 404)
    assert Upload.objects.filter(pk=upload.pk).exists()
    opened = bob_client.get(f"/remove/?upload={upload.public_id}").content.decode()
    assert upload.public_id not in opened, "the upload page opens only the user's own"
    # Bob's pages show nothing of Alice's.
    for url in ("/account/", "/account/history/"):
        page = bob_client.get(url).content.decode()
        assert upload.public_id not in page and alice_key[0] not in page
        assert visitor.get(url).status_code == 302  # to the login page
    assert visitor.get("/account/delete/").status_code == 302
    assert visitor.post("/account/delete/", {"password": PASSWORD}).status_code == 302
    # Bob deleting his own account leaves Alice's untouched.
    bob_client.post("/account/delete/", {"password": PASSWORD})
    assert User.objects.get(pk=alice.pk).is_active
    assert Upload.objects.filter(pk=upload.pk).exists()
    assert CallRecord.objects.filter(user=alice).exists()


def test_the_api_page_fills_in_the_customers_own_api_id_and_never_a_secret(alice):
    key = ApiKey.objects.get(key_id=make_key(alice)[0])
    secret_hmac = key.secret_hmac
    page = client_for(alice).get("/docs/api/").content.decode()
    assert page.count(key.key_id) >= 4  # the note, curl, Python and JavaScript
    assert secret_hmac not in page and "CUTOUT_SECRET" in page
    for code, spec in errors.ERRORS.items():
        assert f">{code}<" in page and str(spec.status) in page
    assert "/api/docs/" in page and "/docs/migrate/" in page
    visitor = Client().get("/docs/api/").content.decode()
    assert "YOUR_API_ID" in visitor and key.key_id not in visitor


def test_the_migration_and_privacy_pages_say_what_changes_and_what_is_kept(db, settings):
    migrate = Client().get("/docs/migrate/").content.decode()
    for old, new in (
        ("https://api.pixian.ai/api/v2/remove-background", "/api/v2/remove-background"),
        ("https://api.remove.bg/v1.0/removebg", "/v1.0/removebg"),
        ("https://aip.baidubce.com", "http://testserver"),
    ):
        assert old in migrate and new in migrate
    privacy = Client().get("/privacy/").content.decode()
    assert f"{settings.CUTOUT_UPLOAD_RETENTION_HOURS} hours" in privacy
    assert f"{settings.CUTOUT_CALL_RECORD_RETENTION_DAYS} days" in privacy
    assert f"{settings.CUTOUT_IMPROVE_RETENTION_DAYS} days" in privacy
    assert "Idempotency-Key</code> is kept 24 hours" in privacy


def test_a_chart_stacks_each_days_series_to_its_total_on_a_round_scale():
    days = [timezone.now().date() - timedelta(days=i) for i in (2, 1, 0)]
    chart = charts.stacked_bars(
        "Calls per day",
        days,
        [
            charts.Stack("api-production", "API", [1, 0, 3]),
            charts.Stack("api-test", "t", [0, 0, 2]),
        ],
    )
    plot = chart.baseline - charts.TOP
    assert [t.label for t in chart.y_ticks] == ["0", "5"]  # 5 calls at most; no "2.5"
    last = [bar for bar in chart.bars if bar.x > chart.bars[0].x + 1]
    assert sum(bar.height for bar in last) == pytest.approx(plot)  # 3 + 2 of 5
    assert [item.total for item in chart.legend] == ["4", "2"]
    assert charts.nice_ceiling(0) == 1 and charts.nice_ceiling(7) == 10
    assert charts.nice_ceiling(0.3) == pytest.approx(0.5)
