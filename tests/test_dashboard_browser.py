"""The customer's own pages in Debian's Chromium against a live server, after real API calls
(HTTP to the live server) and website uploads: the dashboard's numbers are the ledger's and
its chart data the call records'; the history re-renders (on the upload page), downloads and
deletes an upload; then the account is deleted from the dashboard and its key is refused.
Run on local files and on an S3-compatible server (tests/support_s3.py). Every page is
screenshotted at desktop and phone sizes (test-results/screenshots/; with
CUTOUT_DOC_SCREENSHOTS=1 the README's dashboard and history pictures in docs/screenshots/)."""

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.db.models import Sum
from django.test import Client
from PIL import Image

from billing import ledger
from billing.formatting import format_credits
from billing.models import LedgerEntry
from removal import usage
from removal.models import CallRecord, Upload
from tests.conftest import PASSWORD, make_key, make_user
from tests.support_api import PIXIAN_PATH, photo
from tests.support_billing import give_credits
from tests.support_browser import log_in, wait_shown
from tests.support_s3 import StorageUnderTest
from tests.test_account_data import website_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WRITE_DOC_SCREENSHOTS = os.environ.get("CUTOUT_DOC_SCREENSHOTS") == "1"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def api_call(live_server, key: tuple[str, str], **fields) -> requests.Response:
    return requests.post(
        live_server.url + PIXIAN_PATH,
        auth=key,
        files={"image": ("api.jpg", photo(), "image/jpeg")},
        data=fields,
        timeout=120,
    )


def shoot(page, screenshots: Path, name: str, docs: bool = False) -> None:
    """Desktop and phone screenshots of the current page; nothing wider than the phone."""
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        path = f"{name}-{suffix}.png"
        page.screenshot(path=screenshots / path, full_page=True)
        if docs and WRITE_DOC_SCREENSHOTS:
            page.screenshot(path=DOCS_SCREENSHOTS / path, full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.set_viewport_size(DESKTOP)


def test_the_dashboard_and_history_after_api_and_website_calls_then_deleting_everything(
    page, context, live_server, screenshots, storage: StorageUnderTest
):
    user = give_credits(make_user("dash@example.com"), Decimal(20))
    key = make_key(user, "laptop")
    assert api_call(live_server, key).status_code == 200
    assert api_call(live_server, key, test="true").status_code == 200
    assert api_call(live_server, key, **{"result.margin": "lots"}).status_code == 400
    web = Client()
    web.force_login(user)
    kept = website_upload(web, name="cat.jpg", **{"background.color": "#d8e4f0"})
    gone = website_upload(web, name="coffee.jpg", test="true")
    docs = storage.kind == "local"

    log_in(context, live_server, user)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/account/")
    summary = ledger.account_summary(user)
    assert page.inner_text("[data-testid=credits]") == format_credits(summary.credits) == "18"
    assert "Low balance" in page.inner_text("[data-testid=balance-notice]")
    data = json.loads(page.inner_text("#usage-data"))
    for series in data["series"]:
        channel, mode = series["key"].split("-")
        rows = CallRecord.objects.filter(user=user, channel=channel, test=mode == "test")
        assert sum(series["calls"]) == rows.count()
        credits = rows.aggregate(total=Sum("credits"))["total"] or Decimal(0)
        assert sum(Decimal(c) for c in series["credits"]) == credits
    charged = LedgerEntry.objects.filter(account__user=user, kind="charge")
    assert -charged.aggregate(total=Sum("amount"))["total"] == Decimal(2)
    assert page.locator("[data-testid=chart] rect").count() >= 4
    assert "result.margin" in page.inner_text("[data-testid=failures]")
    if docs:
        shoot(page, screenshots, "dashboard", docs=True)

    page.goto(live_server.url + "/account/history/")
    assert page.locator("[data-testid=upload]").count() == 2
    assert page.locator("[data-testid=api-call]").count() == 3
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=upload] img')].every(i => i.naturalWidth)"
    )
    if docs:
        shoot(page, screenshots, "history", docs=True)

    # Re-render on the upload page, free: the stored upload opens with the page's options.
    balance = ledger.balance(user)
    page.click(f"[data-upload-id='{kept.public_id}'] [data-testid=rerender]")
    page.wait_for_selector("#uploader[data-ready=true]")
    wait_shown(page, 0)
    assert ledger.balance(user) == balance

    page.goto(live_server.url + "/account/history/")
    with page.expect_download() as info:
        page.click(f"[data-upload-id='{kept.public_id}'] [data-testid=download]")
    # The last render's options: the upload page's, since it rendered the upload again.
    kept.refresh_from_db()
    with Image.open(info.value.path()) as result:
        assert result.size == (kept.width, kept.height)
        assert result.format == ("JPEG" if "background.color" in kept.options else "PNG")
    page.click(f"[data-upload-id='{gone.public_id}'] [data-testid=delete-upload]")
    page.wait_for_selector(".messages")
    assert page.locator("[data-testid=upload]").count() == 1
    kept.refresh_from_db()
    files = [kept.original.name, kept.alpha.name, kept.thumbnail.name]
    assert sorted(storage.names()) == sorted(files)

    for path, name in (("/docs/api/", "api"), ("/docs/migrate/", "migration")):
        page.goto(live_server.url + path)
        if docs:
            shoot(page, screenshots, name)
    assert page.inner_text("[data-testid=migrate-pixian]")
    page.goto(live_server.url + "/docs/api/")
    assert key[0] in page.inner_text("[data-testid=qs-python]")
    assert key[1] not in page.content()

    page.goto(live_server.url + "/account/")
    page.click("[data-testid=delete-account]")
    page.wait_for_selector("[data-testid=confirm-delete-account]")
    if docs:
        shoot(page, screenshots, "account-delete")
    page.fill("input[name=password]", PASSWORD)
    page.click("[data-testid=confirm-delete-account]")
    page.wait_for_selector("[data-testid=account-deleted]")
    assert storage.names() == []
    assert not Upload.objects.filter(user=user).exists()
    assert api_call(live_server, key).status_code == 401
    assert ledger.balance(user) == 0 and ledger.check() == []
    page.goto(live_server.url + "/account/")
    assert "/accounts/login/" in page.url


def test_the_privacy_page_and_a_new_accounts_dashboard_fit_a_phone(
    page, context, live_server, screenshots
):
    page.goto(live_server.url + "/privacy/")
    assert "hours" in page.inner_text("[data-testid=retention]")
    shoot(page, screenshots, "privacy")
    user = make_user("new@example.com")
    log_in(context, live_server, user)
    page.goto(live_server.url + "/account/")
    assert page.inner_text("[data-testid=state]").startswith("No credits yet")
    assert page.locator("[data-testid=failure]").count() == 0
    assert usage.daily_usage(user).series[0].total_calls == 0
    shoot(page, screenshots, "dashboard-new")
