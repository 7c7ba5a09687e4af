"""Reseller mode against the fault-injecting stand-in upstream (tests/support_upstream.py):
each upstream answer in the README's table gives the customer the mapped error and charges
nothing; the fallback serves with the local engine when it is on; the upstream cap and the
operator's view."""

import base64
import io
import json
import time
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from PIL import Image

from billing import ledger
from billing.models import LedgerEntry
from removal import active_engine, limits
from removal.engine.types import RemovalContext, RemovalOptions
from removal.errors import RemovalError
from removal.upstream import health
from tests.support_api import (
    PIXIAN_PATH,
    assert_error,
    assert_nothing_charged,
    basic,
    photo,
    upload,
)
from tests.support_batches import BATCHES, api, charged_total, run_tickets
from tests.support_billing import ALICE_CREDITS
from tests.support_upstream import error, reset, stall, success, text, truncated
from tests.test_api_baidu import SEGMENT_PATH, token_for

MARKUP = Decimal("2")


@pytest.fixture
def reseller(settings, fake_pixian):
    """This process in reseller mode in front of the stand-in, with waits in milliseconds."""
    settings.CUTOUT_ENGINE = "pixian"
    settings.CUTOUT_UPSTREAM_URL = fake_pixian.url
    settings.CUTOUT_UPSTREAM_ID = fake_pixian.api_id
    settings.CUTOUT_UPSTREAM_SECRET = fake_pixian.api_secret
    settings.CUTOUT_UPSTREAM_DEADLINE_S = 2.0
    settings.CUTOUT_UPSTREAM_BACKOFF_S = 0.02
    settings.CUTOUT_UPSTREAM_MAX_TRIES = 3
    settings.CUTOUT_RESELLER_MARKUP = MARKUP
    settings.CUTOUT_RESELLER_FALLBACK = ""
    return fake_pixian


def post(alice_key, **fields) -> object:
    client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    return client.post(PIXIAN_PATH, {"image": upload(photo()), **fields})


def test_a_success_is_charged_the_upstreams_charge_times_markup(reseller, alice, alice_key):
    reseller.reply(success(charged="0.5", X_Result_Size="16 12", X_Extra_Thing="kept"))
    answer = post(alice_key, **{"background.color": "#ff0000"})
    assert answer.status_code == 200, answer.content
    assert answer["X-Credits-Charged"] == "1"
    assert answer["X-Extra-Thing"] == "kept"
    assert answer["X-Cutout-Engine"] == "upstream"
    assert ledger.balance(alice) == ALICE_CREDITS - 1
    seen = reseller.seen[-1]
    assert seen.fields == {"background.color": "#ff0000"}
    assert len(seen.headers["idempotency-key"]) == 64
    assert ledger.check() == []


def test_the_upstream_key_is_the_same_for_a_customers_retry_and_new_for_another_key(
    reseller, alice, alice_key
):
    reseller.reply(error(500, 5000, "boom"), success(), success())
    client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    image = photo()
    for key in ("order-1", "order-1", "order-2"):
        client.post(PIXIAN_PATH, {"image": upload(image)}, HTTP_IDEMPOTENCY_KEY=key)
    keys = [seen.headers["idempotency-key"] for seen in reseller.seen]
    # A 5xx answer is not kept for the customer's key, so the retry goes upstream again,
    # with the same upstream key; another customer key is another upstream key.
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
    assert ledger.balance(alice) == ALICE_CREDITS - 2 * MARKUP


# (upstream replies, the customer's status and code): the README's table, one row each.
TABLE = [
    ([error(429, 1, "slow down", Retry_After="30")], 503, 5030),
    ([error(400, 1006, "Failed to read the supplied image.")], 400, 1006),
    ([error(400, 4711, "Something upstream-specific.")], 400, 1099),
    ([error(413, 1004, "Too large.")], 413, 1004),
    ([error(401, 4002, "Unknown API id")], 503, 5030),
    ([error(402, 4020, "Out of credits")], 503, 5030),
    ([error(403, 4030, "Forbidden")], 503, 5030),
    ([error(502, 5020, "bad gateway")] * 3, 502, 5020),
    ([text(503, "<html>down</html>")] * 3, 502, 5020),
    ([error(504, 5040, "timeout")] * 3, 502, 5020),
    ([error(500, 5000, "internal")], 502, 5020),
    ([error(404, 4040, "Not found.")], 502, 5020),
    ([text(418, "teapot")], 502, 5020),
    ([reset()] * 3, 503, 5030),
    ([truncated()], 502, 5020),
    ([success(body=b"not an image")], 502, 5020),
    ([success(charged=None)], 502, 5020),
    ([success(X_Result_Size="99 99")], 502, 5020),
    ([stall(5)], 504, 5040),
]


@pytest.mark.parametrize(("replies", "status", "code"), TABLE)
def test_each_upstream_failure_is_the_mapped_error_and_charges_nothing(
    reseller, alice, alice_key, replies, status, code
):
    reseller.reply(*replies)
    assert_error(post(alice_key), status, code)
    assert_nothing_charged(alice)


def test_a_remove_bg_call_gets_the_mapped_error_in_its_own_format(reseller, alice, alice_key):
    reseller.reply(error(402, 4020, "Out of credits"))
    client = Client(HTTP_X_API_KEY=":".join(alice_key))
    answer = client.post("/v1.0/removebg", {"image_file": upload(photo())})
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["code"]
    assert_nothing_charged(alice)


@pytest.mark.parametrize(
    "replies",
    [[error(402, 4020, "Out of credits")], [error(503, 5030, "down")] * 3, [reset()] * 3],
)
def test_the_fallback_serves_with_the_local_engine_when_on(
    reseller, settings, alice, alice_key, replies
):
    settings.CUTOUT_RESELLER_FALLBACK = "local"
    settings.CUTOUT_CREDITS_PER_IMAGE = Decimal("1.25")
    reseller.reply(*replies)
    answer = post(alice_key)
    assert answer.status_code == 200, answer.content
    assert answer["X-Cutout-Engine"] == "local"
    assert answer["X-Credits-Charged"] == "1.25"
    assert ledger.balance(alice) == ALICE_CREDITS - Decimal("1.25")
    assert ledger.check() == []


def test_without_the_fallback_the_same_failure_is_the_mapped_error(reseller, alice, alice_key):
    reseller.reply(error(402, 4020, "Out of credits"))
    assert_error(post(alice_key), 503, 5030)
    assert_nothing_charged(alice)


def test_the_fallback_counts_the_time_the_request_has_already_used(reseller, settings):
    """The fallback starts only if the local engine's time fits in what is left since the
    request began (the middleware's `started`), not since the engine was called."""
    settings.CUTOUT_RESELLER_FALLBACK = "local"
    engine = active_engine.build_upstream()
    late = RemovalContext(started=time.monotonic() - engine.request_s + engine.fallback_s / 2)
    reseller.reply(error(402, 4020, "Out of credits"))
    with pytest.raises(RemovalError) as refused:
        engine.remove(photo(), RemovalOptions(), late)
    assert refused.value.code == 5030
    reseller.reply(error(402, 4020, "Out of credits"))
    fresh = RemovalContext(started=time.monotonic())
    assert engine.remove(photo(), RemovalOptions(), fresh).engine == "local"


def test_the_fallback_never_replaces_a_refusal_of_the_image(reseller, settings, alice, alice_key):
    settings.CUTOUT_RESELLER_FALLBACK = "local"
    reseller.reply(error(400, 1006, "Failed to read the supplied image."))
    assert_error(post(alice_key), 400, 1006)
    assert_nothing_charged(alice)


def test_an_account_past_its_share_of_upstream_calls_waits_its_turn(
    reseller, settings, alice, alice_key
):
    settings.CUTOUT_UPSTREAM_CONCURRENCY = 4
    settings.CUTOUT_UPSTREAM_ACCOUNT_SHARE = 0.5
    with limits.upstream_call(f"user:{alice.pk}"), limits.upstream_call(f"user:{alice.pk}"):
        assert_error(post(alice_key), 429, 4290)
    assert reseller.tries == 0
    assert_nothing_charged(alice)
    assert post(alice_key).status_code == 200


def test_the_site_wide_upstream_cap_holds_for_every_account(reseller, settings, alice, alice_key):
    settings.CUTOUT_UPSTREAM_CONCURRENCY = 2
    settings.CUTOUT_UPSTREAM_ACCOUNT_SHARE = 0.5
    with limits.upstream_call("user:other-1"), limits.upstream_call("user:other-2"):
        assert_error(post(alice_key), 503, 5031)
    assert reseller.tries == 0
    assert_nothing_charged(alice)


def test_the_operator_sees_the_upstreams_health(reseller, alice, alice_key, capsys):
    reseller.reply(success(), error(402, 4020, "Out of credits"))
    assert post(alice_key).status_code == 200
    assert post(alice_key).status_code == 503
    now = health.current()
    assert now.last_success is not None
    assert now.last_error["upstream_status"] == 402
    assert now.last_error["upstream_code"] == 4020
    assert now.last_error["message"] == "Out of credits"
    assert now.credits == "812.5" and now.account_error == ""
    call_command("upstream_status")
    out = capsys.readouterr().out
    assert "812.5" in out and "402" in out and "Out of credits" in out
    assert LedgerEntry.objects.filter(account__user=alice, kind="charge").count() == 1


def test_a_failure_to_read_the_upstream_account_is_shown_not_raised(reseller, settings, capsys, db):
    settings.CUTOUT_UPSTREAM_SECRET = "wrong"
    now = health.current()
    assert now.credits is None and "5030" in now.account_error
    call_command("upstream_status")
    assert "5030" in capsys.readouterr().out


def test_the_upstream_page_is_for_staff_only(reseller, alice, bob):
    page = "/staff/upstream/"
    assert Client().get(page).status_code == 302
    client = Client()
    client.force_login(alice)
    assert client.get(page).status_code == 302
    bob.is_staff = True
    bob.save()
    client.force_login(bob)
    shown = client.get(page)
    assert shown.status_code == 200
    assert b"812.5" in shown.content and b"calls in the last hour" in shown.content


def test_a_charge_above_the_hold_is_capped_and_the_rest_recorded_as_the_resellers_loss(
    reseller, alice, alice_key
):
    # The hold is markup x 1 upstream credit; an upstream charging 1.5 leaves 1 uncollected.
    reseller.reply(success(charged="1.5"))
    answer = post(alice_key)
    assert answer.status_code == 200, answer.content
    assert answer["X-Credits-Charged"] == "2"
    entry = LedgerEntry.objects.get(account__user=alice, kind="charge")
    assert entry.amount == -2 and entry.uncollected == 1
    assert ledger.check() == []


def test_boxes_send_the_crop_that_bounds_them_and_clear_the_alpha_outside(
    reseller, alice, alice_key
):
    reseller.reply(success())  # an opaque red 16 x 12 cut-out, scaled to the crop
    client = Client(HTTP_X_API_KEY=":".join(alice_key))
    answer = client.post(
        "/v1.0/removebg",
        {"image_file": upload(photo()), "roi": "20px 10px 120px 90px", "format": "png"},
    )
    assert answer.status_code == 200, answer.content
    sent = reseller.seen[-1]
    assert sent.fields["max_pixels"] == str(100 * 80)
    assert Image.open(io.BytesIO(sent.files["image"][1])).size == (100, 80)
    alpha = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGBA"))[..., 3].copy()
    assert alpha.shape == (160, 240)
    assert alpha[10:90, 20:120].min() == 255
    alpha[10:90, 20:120] = 0
    assert alpha.max() == 0
    assert ledger.balance(alice) == ALICE_CREDITS - MARKUP


def test_baidu_control_boxes_and_remove_bg_zip_are_rendered_here(reseller, alice, alice_key):
    client = Client()
    token = token_for(client, alice_key)
    boxes = json.dumps([[[10, 10], [60, 50]], [[150, 80], [230, 150]]])
    answer = client.post(
        f"{SEGMENT_PATH}?access_token={token}",
        json.dumps(
            {
                "image": base64.b64encode(photo()).decode(),
                "method": "control",
                "position": boxes,
                "return_form": "mask",
            }
        ),
        content_type="application/json",
    )
    assert answer.status_code == 200 and "error_code" not in answer.json(), answer.content
    assert answer["X-Cutout-Engine"] == "upstream"
    # One upstream call with the crop bounding both boxes.
    sent = reseller.seen[-1]
    assert Image.open(io.BytesIO(sent.files["image"][1])).size == (220, 140)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["image"]))))
    assert mask[10:50, 10:60].min() == 255 and mask[80:150, 150:230].min() == 255
    assert mask[60:80, 70:140].max() == 0
    rbg = Client(HTTP_X_API_KEY=":".join(alice_key))
    zipped = rbg.post(
        "/v1.0/removebg",
        {"image_file": upload(photo()), "format": "zip", "channels": "alpha", "scale": "50%"},
    )
    assert zipped.status_code == 200, zipped.content
    assert zipped["Content-Type"] == "application/zip"
    assert reseller.tries == 2
    assert ledger.balance(alice) == ALICE_CREDITS - 2 * MARKUP


def test_a_batch_in_reseller_mode_sends_each_item_upstream_once_charged_with_markup(
    reseller, alice, alice_key
):
    """Each item is one upstream call with a key of its own (the same on a worker's retry:
    it comes from the batch and the item), charged the upstream's charge x markup."""
    client = api(alice_key)
    images = [upload(photo("chelsea", (48, 32))), upload(photo("coffee", (48, 32)))]
    created = client.post(f"{BATCHES}?start=true", {"image": images})
    assert created.status_code == 201, created.content
    batch_id = created.json()["id"]
    if created.json()["state"] == "open":
        assert client.post(f"{BATCHES}/{batch_id}/start").status_code == 200
    reseller.reply(success(charged="1"), success(charged="1"))
    assert run_tickets() == 2
    assert client.get(f"{BATCHES}/{batch_id}").json()["counts"]["succeeded"] == 2
    assert reseller.tries == 2
    keys = {seen.headers.get("idempotency-key") for seen in reseller.seen}
    assert len(keys) == 2 and None not in keys
    assert charged_total(batch_id) == 2 * MARKUP
    assert ledger.balance(alice) == ALICE_CREDITS - 2 * MARKUP
    assert ledger.check() == []
