"""POST /api/v2/remove-background to the letter of spec/pixian-v2.md, through Django's test
client: the real view, engine (u2netp), ledger and error handler. Every bad input of issue 7
has its own test: status, code, nothing charged, never a 500."""

import base64
import io
import json
import logging
import resource
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import numpy as np
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections
from django.test import Client

from billing import ledger
from billing.models import LedgerEntry, Reservation
from removal import idempotency, keys
from removal.models import ApiKey, IdempotentRequest
from tests.conftest import make_key, make_user
from tests.support_api import (
    PIXIAN_PATH,
    alpha_of,
    assert_error,
    assert_nothing_charged,
    basic,
    bilevel_png,
    decode_result,
    encode,
    photo,
    photo_host,
    rotated_photo,
    tiny_png,
    upload,
)
from tests.support_billing import ALICE_CREDITS, give_credits

RESULT_HEADERS = [
    "X-Credits-Charged",
    "X-Input-Orientation",
    "X-Input-Size",
    "X-Result-Size",
    "X-Input-Foreground",
    "X-Result-Foreground",
]


@pytest.fixture
def api(alice_key) -> Client:
    """A client that sends Alice's credentials (100 credits) on every request."""
    return Client(HTTP_AUTHORIZATION=basic(*alice_key))


@pytest.fixture
def bob_api(bob) -> Client:
    """Bob has an API key and no credits."""
    return Client(HTTP_AUTHORIZATION=basic(*make_key(bob)))


# --- success -----------------------------------------------------------------------------------


def test_png_with_alpha_and_every_header_charged_exactly_the_ledger_entry(api, alice):
    response = api.post(PIXIAN_PATH, {"image": upload(photo())})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    for header in RESULT_HEADERS:
        assert response[header], header
    assert "X-Credits-Calculated" not in response
    assert response["X-Input-Orientation"] == "1"
    assert response["X-Input-Size"] == "240 160"
    assert response["X-Result-Size"] == "240 160"
    image = decode_result(response.content)
    assert image.mode == "RGBA" and image.size == (240, 160)
    alpha = alpha_of(response.content)
    assert alpha.min() == 0 and alpha.max() == 255  # a cat on a background: both are there
    top, left, width, height = map(int, response["X-Input-Foreground"].split())
    assert width > 0 and height > 0 and left + width <= 240 and top + height <= 160
    charge = LedgerEntry.objects.get(account__user=alice, kind="charge")
    assert response["X-Credits-Charged"] == "1" and charge.amount == Decimal(-1)
    assert ledger.balance(alice) == ALICE_CREDITS - 1
    assert ledger.check() == []


def test_test_call_is_free_watermarked_and_says_what_it_would_cost(api, alice):
    production = api.post(PIXIAN_PATH, {"image": upload(photo())})
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), "test": "true"})
    assert response.status_code == 200
    assert response["X-Credits-Charged"] == "0"
    assert response["X-Credits-Calculated"] == "1"
    assert LedgerEntry.objects.filter(account__user=alice, kind="charge").count() == 1
    assert ledger.balance(alice) == ALICE_CREDITS - 1
    # The watermark changes pixels of the result.
    assert response.content != production.content


def test_test_call_works_at_zero_balance(bob_api, bob):
    response = bob_api.post(PIXIAN_PATH, {"image": upload(photo()), "test": "TRUE"})
    assert response.status_code == 200
    assert (response["X-Credits-Charged"], response["X-Credits-Calculated"]) == ("0", "1")
    assert_nothing_charged(bob, Decimal(0))


def test_background_color_gives_an_opaque_jpeg(api):
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), "background.color": "#0055FF"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert decode_result(response.content).mode == "RGB"


def test_jpeg_quality_changes_the_jpeg(api):
    fields = {"background.color": "#FFFFFF", "output.format": "jpeg"}
    low = api.post(PIXIAN_PATH, {"image": upload(photo()), **fields, "output.jpeg_quality": "5"})
    high = api.post(PIXIAN_PATH, {"image": upload(photo()), **fields, "output.jpeg_quality": "95"})
    assert low.status_code == high.status_code == 200
    assert len(low.content) < len(high.content)


def test_target_size_and_crop_give_the_asked_size(api):
    response = api.post(
        PIXIAN_PATH,
        {
            "image": upload(photo()),
            "result.crop_to_foreground": "true",
            "result.target_size": "100 120",
            "result.margin": "5px",
        },
    )
    assert response.status_code == 200
    assert response["X-Result-Size"] == "100 120"
    assert decode_result(response.content).size == (100, 120)


def test_delta_png_has_the_input_size_whatever_max_pixels_says(api):
    response = api.post(
        PIXIAN_PATH,
        {"image": upload(photo()), "output.format": "delta_png", "max_pixels": "1000"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert decode_result(response.content).size == (240, 160)
    assert response["X-Result-Size"] == "240 160"


def test_exif_orientation_is_applied_and_reported(api):
    response = api.post(PIXIAN_PATH, {"image": upload(rotated_photo(6))})
    assert response.status_code == 200
    assert response["X-Input-Orientation"] == "6"
    assert response["X-Input-Size"] == "160 240"  # sizes are the oriented image's
    assert decode_result(response.content).size == (160, 240)


def test_base64_input_with_data_prefix(api, alice):
    text = "data:image/jpeg;base64," + base64.b64encode(photo()).decode()
    response = api.post(PIXIAN_PATH, {"image.base64": text})
    assert response.status_code == 200
    assert response["X-Input-Size"] == "240 160"


def test_form_encoded_body_with_base64(api):
    from urllib.parse import urlencode

    body = urlencode({"image.base64": base64.b64encode(photo()).decode(), "test": "1"})
    response = api.post(PIXIAN_PATH, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response["X-Credits-Charged"] == "0"


def test_image_url_from_a_server_on_loopback(api, settings, alice):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    with photo_host({"/example.jpeg": photo()}) as base:
        response = api.post(PIXIAN_PATH, {"image.url": f"{base}/example.jpeg"})
    assert response.status_code == 200
    assert response["X-Credits-Charged"] == "1"


def test_image_url_on_loopback_is_refused_by_default(api, alice):
    with photo_host({"/example.jpeg": photo()}) as base:
        response = api.post(PIXIAN_PATH, {"image.url": f"{base}/example.jpeg"})
    assert_error(response, 400, 3002)
    assert_nothing_charged(alice)


def test_unknown_fields_are_ignored(api):
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), "test": "1", "colour": "x"})
    assert response.status_code == 200


def test_any_accept_header_gets_the_image_and_errors_get_json(api):
    response = api.post(
        PIXIAN_PATH, {"image": upload(photo()), "test": "1"}, HTTP_ACCEPT="application/xml"
    )
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    response = api.post(PIXIAN_PATH, {"test": "1"}, HTTP_ACCEPT="image/png")
    assert_error(response, 400, 1001)


# --- authentication ----------------------------------------------------------------------------


def test_missing_credentials_is_401_4001(client, alice):
    response = client.post(PIXIAN_PATH, {"image": upload(photo())})
    assert_error(response, 401, 4001)
    assert response["WWW-Authenticate"] == 'Basic realm="Cutout"'
    assert_nothing_charged(alice)


def test_malformed_credentials_is_401_4001(client, alice):
    response = client.post(
        PIXIAN_PATH, {"image": upload(photo())}, HTTP_AUTHORIZATION="Basic !!notbase64"
    )
    assert_error(response, 401, 4001)


def test_wrong_secret_is_401_4002(client, alice, alice_key):
    response = client.post(
        PIXIAN_PATH, {"image": upload(photo())}, HTTP_AUTHORIZATION=basic(alice_key[0], "x" * 32)
    )
    assert_error(response, 401, 4002)
    assert response["WWW-Authenticate"] == 'Basic realm="Cutout"'
    assert_nothing_charged(alice)


def test_unknown_api_id_is_401_4002(client, alice):
    response = client.post(
        PIXIAN_PATH, {"image": upload(photo())}, HTTP_AUTHORIZATION=basic("pxxbbzb96n2w8am", "s")
    )
    assert_error(response, 401, 4002)


def test_revoked_key_is_401_4002(api, alice, alice_key):
    keys.revoke(ApiKey.objects.get(key_id=alice_key[0]))
    response = api.post(PIXIAN_PATH, {"image": upload(photo())})
    assert_error(response, 401, 4002)
    assert_nothing_charged(alice)


def test_authentication_comes_before_parsing(client):
    response = client.post(PIXIAN_PATH, {"max_pixels": "nonsense"})
    assert_error(response, 401, 4001)


# --- credits -----------------------------------------------------------------------------------


def test_zero_balance_is_402_4020_before_any_work(bob_api, bob):
    response = bob_api.post(PIXIAN_PATH, {"image": upload(photo())})
    message = assert_error(response, 402, 4020)
    assert "credits" in message
    assert_nothing_charged(bob, Decimal(0))


def test_lapsed_credits_are_402_4021(api, alice):
    from billing.models import CreditAccount

    CreditAccount.objects.filter(user=alice).update(use_before="2000-01-01T00:00:00Z")
    response = api.post(PIXIAN_PATH, {"image": upload(photo())})
    assert_error(response, 402, 4021)
    assert ledger.check() == []


def test_input_errors_come_before_the_balance(bob_api, bob):
    response = bob_api.post(PIXIAN_PATH, {"image": upload(b"")})
    assert_error(response, 400, 1005)


# --- bad input: each its own test --------------------------------------------------------------


def test_no_input_is_1001(api, alice):
    assert_error(api.post(PIXIAN_PATH, {"test": "true"}), 400, 1001)
    assert_nothing_charged(alice)


def test_empty_body_is_1001(api, alice):
    assert_error(api.post(PIXIAN_PATH), 400, 1001)
    assert_nothing_charged(alice)


def test_two_inputs_is_1002(api, alice):
    text = base64.b64encode(photo()).decode()
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), "image.base64": text})
    assert_error(response, 400, 1002)
    assert_nothing_charged(alice)


def test_empty_file_is_1005(api, alice):
    assert_error(api.post(PIXIAN_PATH, {"image": upload(b"", "empty.png")}), 400, 1005)
    assert_nothing_charged(alice)


def test_truncated_jpeg_is_1006(api, alice):
    data = photo()
    message = assert_error(
        api.post(PIXIAN_PATH, {"image": upload(data[: len(data) // 2])}), 400, 1006
    )
    assert "read" in message
    assert_nothing_charged(alice)


def test_text_named_png_is_1006(api, alice):
    text = b"This is not a picture, whatever its name says.\n" * 20
    assert_error(api.post(PIXIAN_PATH, {"image": upload(text, "photo.png")}), 400, 1006)
    assert_nothing_charged(alice)


def test_one_by_one_image_is_1009(api, alice):
    assert_error(api.post(PIXIAN_PATH, {"image": upload(tiny_png((1, 1)), "dot.png")}), 400, 1009)
    assert_nothing_charged(alice)


def test_32_000_001_pixels_is_1008(api, alice):
    data = bilevel_png(57041, 561)  # 57,041 × 561 = 32,000,001
    message = assert_error(api.post(PIXIAN_PATH, {"image": upload(data, "big.png")}), 400, 1008)
    assert "32,000,000" in message
    assert_nothing_charged(alice)


def test_png_bomb_is_refused_from_the_header_with_memory_flat(api, alice):
    bomb = bilevel_png(40_000, 40_000)  # 1.6 gigapixels in a few hundred kB
    assert len(bomb) < 1_000_000
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = api.post(PIXIAN_PATH, {"image": upload(bomb, "bomb.png")})
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb) / 1024
    assert_error(response, 400, 1008)
    assert grown_mb < 100  # decoding would need 1,600 MB at the very least
    assert_nothing_charged(alice)


def test_base64_over_1_mb_is_1003(api, alice):
    text = base64.b64encode(b"\xff" * (800 * 1024)).decode()  # 1,092,268 characters
    message = assert_error(api.post(PIXIAN_PATH, {"image.base64": text}), 400, 1003)
    assert "1,048,576" in message
    assert_nothing_charged(alice)


def test_bad_base64_is_1003(api, alice):
    assert_error(api.post(PIXIAN_PATH, {"image.base64": "not*base64?"}), 400, 1003)
    assert_nothing_charged(alice)


def test_unsupported_format_is_1007(api, alice):
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
    assert_error(api.post(PIXIAN_PATH, {"image": upload(pdf, "scan.pdf")}), 400, 1007)
    assert_nothing_charged(alice)


BAD_OPTIONS = [
    ("test", "yes", 2001),
    ("max_pixels", "99", 2002),
    ("max_pixels", "25000001", 2002),
    ("background.color", "0055FF", 2003),
    ("result.crop_to_foreground", "maybe", 2004),
    ("result.margin", "10", 2005),
    ("result.target_size", "1920x1080", 2006),
    ("result.vertical_alignment", "center", 2007),
    ("output.format", "webp", 2008),
    ("output.jpeg_quality", "0", 2009),
    ("output.jpeg_quality", "101", 2009),
]


@pytest.mark.parametrize("name, value, code", BAD_OPTIONS)
def test_each_bad_option_value_is_its_own_code_naming_the_parameter(api, alice, name, value, code):
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), name: value})
    message = assert_error(response, 400, code)
    assert name in message and repr(value) in message
    assert_nothing_charged(alice)


def test_body_over_the_cap_is_413_json_before_reading_it(api, alice, settings):
    settings.CUTOUT_MAX_UPLOAD_MB = 1
    response = api.post(PIXIAN_PATH, {"image": upload(b"\xff" * (1024 * 1024 + 1))})
    message = assert_error(response, 413, 1004)
    assert "1 MB" in message
    assert_nothing_charged(alice)


def test_json_body_is_415(api, alice):
    response = api.post(PIXIAN_PATH, {"image.url": "x"}, content_type="application/json")
    assert_error(response, 415, 4150)


def test_broken_multipart_is_1010(api, alice):
    response = api.post(
        PIXIAN_PATH,
        b"--b\r\nContent-Disposition: form-data; name=image\r\n\r\nabc",
        content_type="multipart/form-data",  # no boundary
    )
    assert_error(response, 400, 1010)


# --- 404, 405, 429, 500 ------------------------------------------------------------------------


def test_get_is_405_json_with_allow(api):
    response = api.get(PIXIAN_PATH)
    assert_error(response, 405, 4050)
    assert "POST" in response["Allow"]


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_unknown_api_path_is_json_404(client, method):
    response = getattr(client, method)("/api/v2/no-such-thing")
    assert_error(response, 404, 4040)


def test_unknown_api_path_is_json_404_with_debug_on(client, settings):
    settings.DEBUG = True
    assert_error(client.post("/api/v3/remove-background"), 404, 4040)


def test_trailing_slash_is_tolerated(api):
    response = api.post(PIXIAN_PATH + "/", {"test": "1"})
    assert_error(response, 400, 1001)


def test_rate_limit_is_429_with_retry_after_before_parsing(api, settings, alice):
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 1
    bad = {"image": upload(photo()), "max_pixels": "x"}
    assert_error(api.post(PIXIAN_PATH, bad), 400, 2002)
    # The window is clock-aligned: a minute's edge may fall after the first call, but two
    # edges never fall within three calls, so one of the next two is the refusal.
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), "max_pixels": "x"})
    if response.status_code == 400:
        response = api.post(PIXIAN_PATH, {"image": upload(photo()), "max_pixels": "x"})
    assert_error(response, 429, 4290)
    assert int(response["Retry-After"]) >= 1
    assert_nothing_charged(alice)


def test_concurrency_limit_is_429(api, settings, alice):
    from removal import limits

    settings.CUTOUT_CONCURRENCY_LIMIT = 1
    with limits.in_flight(f"user:{alice.pk}"):
        response = api.post(PIXIAN_PATH, {"image": upload(photo())})
    assert_error(response, 429, 4290)
    assert response["Retry-After"]
    assert_nothing_charged(alice)


def test_unexpected_failure_is_500_5000_with_the_logged_request_id(api, alice, settings, caplog):
    # An operator's typo in the price: a failure that no input explains.
    settings.CUTOUT_CREDITS_PER_IMAGE = "one"
    with caplog.at_level(logging.ERROR):
        response = api.post(PIXIAN_PATH, {"image": upload(photo())})
    message = assert_error(response, 500, 5000)
    request_id = response["X-Request-Id"]
    assert len(request_id) == 32 and request_id in message
    assert any(request_id in record.getMessage() for record in caplog.records)
    assert_nothing_charged(alice)


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_repeat_with_the_same_key_returns_the_same_answer_charged_once(api, alice):
    first = api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    for header in RESULT_HEADERS:
        assert again[header] == first[header]
    assert again["Idempotent-Replayed"] == "true"
    assert again["X-Request-Id"] != first["X-Request-Id"]
    assert LedgerEntry.objects.filter(account__user=alice, kind="charge").count() == 1
    assert ledger.balance(alice) == ALICE_CREDITS - 1
    other = api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="order-43")
    assert other.status_code == 200 and "Idempotent-Replayed" not in other
    assert ledger.balance(alice) == ALICE_CREDITS - 2


def test_a_stored_error_is_replayed_with_its_status(api, alice):
    first = api.post(
        PIXIAN_PATH, {"image": upload(photo()), "output.format": "gif"}, HTTP_IDEMPOTENCY_KEY="k1"
    )
    again = api.post(
        PIXIAN_PATH, {"image": upload(photo()), "output.format": "gif"}, HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert_error(again, 400, 2008)
    assert again.content == first.content
    assert_nothing_charged(alice)


def test_keys_belong_to_their_user(api, bob_api, alice, bob):
    api.post(PIXIAN_PATH, {"output.format": "gif"}, HTTP_IDEMPOTENCY_KEY="shared")  # a 400
    response = bob_api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="shared")
    assert_error(response, 402, 4020)


def test_a_402_is_not_stored_so_a_retry_after_buying_runs(bob_api, bob):
    assert_error(
        bob_api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="k"), 402, 4020
    )
    ledger.grant(bob, Decimal(1), "test:bob-buys-one")
    response = bob_api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 200 and response["X-Credits-Charged"] == "1"
    assert ledger.balance(bob) == 0


def test_a_duplicate_while_the_first_runs_is_409_and_not_charged(api, alice):
    idempotency.claim(alice, "pixian:remove-background", "busy")  # the first, still running
    response = api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="busy")
    assert_error(response, 409, 4090)
    assert response["Retry-After"]
    assert_nothing_charged(alice)


def test_after_24_hours_the_key_is_new_again(api, alice):
    from django.utils import timezone

    api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="daily")
    IdempotentRequest.objects.update(created_at=timezone.now() - idempotency.WINDOW)
    response = api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="daily")
    assert response.status_code == 200 and "Idempotent-Replayed" not in response
    assert ledger.balance(alice) == ALICE_CREDITS - 2


@pytest.mark.parametrize("key", ["x" * 256, "naïve"])
def test_malformed_idempotency_key_is_1011(api, alice, key):
    response = api.post(
        PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1")
    )
    assert_error(response, 400, 1011)
    assert_nothing_charged(alice)


@pytest.mark.postgres
@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_do_the_work_once(alice_key, alice):
    """Eight threads, one key: one charge, and every answer is the result or a 409."""
    statuses: list[int] = []

    def call() -> None:
        client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
        try:
            response = client.post(
                PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="same-order"
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()  # this thread's own connection, before the test DB goes

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 409} and 200 in statuses
    assert LedgerEntry.objects.filter(account__user=alice, kind="charge").count() == 1
    assert ledger.balance(alice) == ALICE_CREDITS - 1
    assert ledger.check() == []


@pytest.fixture
def wide_server(transactional_db) -> Iterator[str]:
    """The site on a real threaded HTTP server, as `live_server` runs it but with a listen
    backlog of 64 rather than 10, so 30 simultaneous connections are queued, not reset."""

    class Server(ThreadedWSGIServer):
        request_queue_size = 64

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = Server(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.postgres
@pytest.mark.concurrent
def test_30_parallel_calls_with_credit_for_10_give_10_results_and_20_402s(wide_server, settings):
    import requests

    settings.CUTOUT_CONCURRENCY_LIMIT = 0  # the limits are not under test here: the ledger is
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 0
    carol = give_credits(make_user("carol@example.com"), Decimal(10), "test:carol-10")
    key = make_key(carol)
    start = threading.Barrier(30)

    def call(_: int) -> requests.Response:
        start.wait()
        return requests.post(
            f"{wide_server}{PIXIAN_PATH}",
            files={"image": ("example.jpeg", photo())},
            auth=key,
            timeout=170,
        )

    with ThreadPoolExecutor(max_workers=30) as pool:
        responses = list(pool.map(call, range(30)))
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 10, 402: 20}, statuses
    for response in responses:
        if response.status_code == 200:
            assert response.headers["X-Credits-Charged"] == "1"
            assert response.content.startswith(b"\x89PNG")
        else:
            assert response.json()["error"] == {
                "status": 402,
                "code": 4020,
                "message": response.json()["error"]["message"],
            }
    assert ledger.balance(carol) == 0
    assert LedgerEntry.objects.filter(account__user=carol, kind="charge").count() == 10
    assert not Reservation.objects.filter(account__user=carol, status="held").exists()
    call_command("check_ledger")  # raises CommandError on any mismatch


# --- result semantics --------------------------------------------------------------------------


def test_input_alpha_is_kept(api):
    rgba = np.zeros((120, 160, 4), dtype=np.uint8)
    rgba[..., :3] = np.asarray(decode_result(photo()).resize((160, 120)))
    rgba[..., 3] = 255
    rgba[:, :40, 3] = 0  # the left quarter is already transparent
    from PIL import Image

    response = api.post(
        PIXIAN_PATH, {"image": upload(encode(Image.fromarray(rgba, "RGBA")), "a.png")}
    )
    assert response.status_code == 200
    assert alpha_of(response.content)[:, :40].max() == 0


def test_large_input_is_scaled_down_to_max_pixels(api):
    big = decode_result(photo("astronaut", None))  # 512 × 512
    response = api.post(PIXIAN_PATH, {"image": upload(encode(big, "JPEG")), "max_pixels": "10000"})
    assert response.status_code == 200
    assert response["X-Input-Size"] == "512 512"
    width, height = map(int, response["X-Result-Size"].split())
    assert width * height <= 10_000 and width == height
    assert decode_result(response.content).size == (width, height)


def test_result_body_is_sent_without_a_charset(api):
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), "test": "1"})
    assert response["Content-Type"] == "image/png"
    assert io.BytesIO(response.content).read(8) == b"\x89PNG\r\n\x1a\n"


def test_too_many_fields_is_1010_not_a_500(api, alice):
    fields = {f"extra{i}": "x" for i in range(1100)}
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), **fields})
    assert_error(response, 400, 1010)
    assert_nothing_charged(alice)


def test_too_many_files_is_1010_not_a_500(api, alice):
    files = {f"extra{i}": upload(b"x", f"{i}.txt") for i in range(120)}
    response = api.post(PIXIAN_PATH, {"image": upload(photo()), **files})
    assert_error(response, 400, 1010)
    assert_nothing_charged(alice)


def test_a_failure_outside_the_views_is_json_500_with_the_request_id(rf, caplog):
    from removal.api import handlers

    request = rf.post(PIXIAN_PATH)
    request.request_id = "0123456789abcdef0123456789abcdef"
    with caplog.at_level(logging.ERROR):
        response = handlers.server_error(request)
    assert_error(response, 500, 5000)
    assert response["X-Request-Id"] == request.request_id
    assert request.request_id in json.loads(response.content)["error"]["message"]
    assert any(request.request_id in record.getMessage() for record in caplog.records)
    page = handlers.server_error(rf.get("/some/page/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_readme_error_table_lists_every_code_with_its_status():
    from pathlib import Path

    from removal.errors import ERRORS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("\n## API\n") :]
    for code, spec in ERRORS.items():
        assert f"\n| {code} | {spec.status} |" in section, code


def test_a_users_answers_past_the_window_are_deleted_as_new_keys_come(api, alice, bob):
    from django.utils import timezone

    old = timezone.now() - idempotency.WINDOW
    for owner, key in ((alice, "old-a"), (bob, "old-b")):
        record = idempotency.claim(owner, "pixian:remove-background", key)
        idempotency.finish(record, 400, "application/json", {}, b"{}")
    IdempotentRequest.objects.update(created_at=old)
    api.post(PIXIAN_PATH, {"output.format": "gif"}, HTTP_IDEMPOTENCY_KEY="new-a")
    assert set(IdempotentRequest.objects.values_list("key", flat=True)) == {"old-b", "new-a"}
    assert idempotency.purge_expired() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new-a"]


def test_free_calls_past_the_site_wide_cap_are_429_before_the_image_is_read(api, settings, alice):
    from removal import limits

    settings.CUTOUT_FREE_CONCURRENCY = 1
    with limits.free_work():
        response = api.post(PIXIAN_PATH, {"image": upload(b"not even an image"), "test": "true"})
        assert_error(response, 429, 4291)
        assert response["Retry-After"]
        # Paid work does not count against the free cap.
        assert api.post(PIXIAN_PATH, {"image": upload(photo())}).status_code == 200
    assert limits.free_work_in_flight() == 0
    assert api.post(PIXIAN_PATH, {"image": upload(photo()), "test": "true"}).status_code == 200


def test_free_calls_past_the_account_s_pixel_budget_are_429_before_decoding(api, bob_api, settings):
    # The budget's spending across calls is tested in test_limits.py, where two calls cannot
    # straddle the minute's edge.
    settings.CUTOUT_FREE_MEGAPIXELS_PER_MINUTE = 1
    big = photo(size=(1000, 1200))  # 1.2 MP: over the budget on its own
    response = api.post(PIXIAN_PATH, {"image": upload(big), "test": "true"})
    assert_error(response, 429, 4292)
    assert 1 <= int(response["Retry-After"]) <= 60
    # A smaller free call, and paid calls (which have no pixel budget), go through.
    assert bob_api.post(PIXIAN_PATH, {"image": upload(photo()), "test": "true"}).status_code == 200
    assert api.post(PIXIAN_PATH, {"image": upload(big)}).status_code == 200
