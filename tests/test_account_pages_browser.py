"""The account pages in Debian's Chromium against a live server: API keys are created by
POST-redirect-GET (a reload creates nothing), revoked after a question; the keys and credits
tables stay inside a phone's 390 px viewport."""

import pytest

from billing.models import LedgerEntry
from removal import keys
from removal.models import ApiKey
from tests.conftest import make_user
from tests.support_billing import give_credits
from tests.support_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def right_edge(page, selector: str) -> float:
    return page.eval_on_selector(selector, "el => el.getBoundingClientRect().right")


def test_keys_are_created_once_shown_once_and_revoked_after_a_question(
    page, context, live_server, screenshots
):
    user = make_user("keys@example.com")
    log_in(context, live_server, user)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/account/keys/")
    page.fill("input[name=name]", "laptop")
    page.click("text=Create key")
    page.wait_for_selector("[data-testid=new-key-secret]")
    assert page.url.endswith("/account/keys/")
    secret = page.inner_text("[data-testid=new-key-secret]")
    key = ApiKey.objects.get(user=user)
    assert keys.verify(key.key_id, secret) is not None
    assert secret in page.inner_text("[data-testid=new-key-curl]")
    page.screenshot(path=screenshots / "keys-new.png", full_page=True)
    for selector in ("[data-testid=keys]", "[data-testid=new-key]"):
        assert right_edge(page, selector) <= PHONE["width"], selector
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.reload()
    assert page.locator("[data-testid=new-key-secret]").count() == 0
    assert ApiKey.objects.filter(user=user).count() == 1

    page.click("text=Revoke…")
    page.wait_for_selector("[data-testid=confirm-revoke]")
    key.refresh_from_db()
    assert key.revoked_at is None, "asked first"
    page.screenshot(path=screenshots / "keys-revoke.png", full_page=True)
    page.click("[data-testid=confirm-revoke]")
    page.wait_for_url("**/account/keys/")
    key.refresh_from_db()
    assert key.revoked_at is not None and keys.verify(key.key_id, secret) is None


def test_the_credits_page_fits_a_phone_and_says_what_a_new_account_has(
    page, context, live_server, screenshots
):
    user = make_user("credits@example.com")
    log_in(context, live_server, user)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/account/credits/")
    state = page.inner_text("[data-testid=state]")
    assert state.startswith("No credits yet") and "dormant" not in state
    give_credits(user)
    for i in range(3):
        give_credits(user, reference=f"phone-test:{i}:with-a-long-reference-text")
    page.reload()
    assert LedgerEntry.objects.filter(account__user=user).count() == 4
    assert right_edge(page, "table") <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshots / "credits-phone.png", full_page=True)
