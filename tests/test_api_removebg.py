"""remove.bg v1.0 (spec/removebg-v1.md) through Django's test client: the real views, engine
(u2netp), ledger, fetcher and error handler. Requests are shaped as remove.bg's documentation
shows them; every error answers remove.bg's JSON with its status and charges nothing."""

import base64
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from billing import ledger
from billing.models import LedgerEntry
from removal import improvements
from removal.api.removebg.options import parse_removebg_options
from removal.models import CallRecord, Improvement
from tests.conftest import make_key
from tests.support_api import (
    PIXIAN_PATH,
    alpha_of,
    basic,
    bilevel_png,
    decode_result,
    encode,
    photo,
    tiny_png,
    upload,
)
from tests.support_billing import ALICE_CREDITS

PATH = "/v1.0/removebg"
RESULT_HEADERS = [
    "X-Credits-Charged",
    "X-Width",
    "X-Height",
    "X-Type",
    "X-Foreground-Top",
    "X-Foreground-Left",
    "X-Foreground-Width",
    "X-Foreground-Height",
]


def api_key(pair: tuple[str, str]) -> str:
    return f"{pair[0]}:{pair[1]}"


@pytest.fixture
def api(alice_key) -> Client:
    return Client(HTTP_X_API_KEY=api_key(alice_key))


def assert_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error = body["errors"][0]
    assert set(error) == {"title", "code", "detail"}
    assert error["code"] == code, error
    assert error["title"] and error["detail"]
    return error["detail"]


def assert_nothing_charged(user, balance: Decimal = ALICE_CREDITS) -> None:
    assert ledger.balance(user) == balance
    assert not LedgerEntry.objects.filter(account__user=user, kind="charge").exists()


def charged(user) -> Decimal:
    return ALICE_CREDITS - ledger.balance(user)


# --- requests as remove.bg's documentation shows them ----------------------------------------


def test_a_multipart_file_without_size_gets_a_preview_charged_a_quarter(api, alice):
    big = photo("astronaut", (800, 800))
    response = api.post(PATH, {"image_file": upload(big)})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    for name in RESULT_HEADERS:
        assert response[name]
    assert response["X-Type"] == "other"
    assert response["X-Credits-Charged"] == "0.25"
    image = decode_result(response.content)
    assert image.mode == "RGBA"
    assert image.width * image.height <= 250_000
    assert (image.width, image.height) == (int(response["X-Width"]), int(response["X-Height"]))
    assert (int(response["X-Max-Width"]), int(response["X-Max-Height"])) == (500, 500)
    assert charged(alice) == Decimal("0.25")
    assert int(response["X-RateLimit-Limit"]) >= int(response["X-RateLimit-Remaining"]) >= 0
    assert int(response["X-RateLimit-Reset"]) > timezone.now().timestamp()


def test_size_full_and_its_legacy_names_charge_one_credit_at_full_size(api, alice):
    for size in ("full", "4k"):
        response = api.post(PATH, {"image_file": upload(photo()), "size": size})
        assert response.status_code == 200, response.content[:300]
        assert response["X-Credits-Charged"] == "1"
        assert (response["X-Width"], response["X-Height"]) == ("240", "160")
        assert "X-Max-Width" not in response
    assert charged(alice) == Decimal(2)
    legacy = api.post(PATH, {"image_file": upload(photo()), "size": "regular"})
    assert legacy["X-Credits-Charged"] == "0.25"


def test_base64_in_json_with_accept_json_answers_result_b64(api, alice):
    response = api.post(
        PATH,
        {"image_file_b64": base64.b64encode(photo()).decode(), "size": "full"},
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content[:300]
    data = response.json()["data"]
    image = decode_result(base64.b64decode(data["result_b64"]))
    assert image.size == (240, 160)
    assert data["foreground_width"] == int(response["X-Foreground-Width"]) > 0
    assert data["foreground_top"] == int(response["X-Foreground-Top"])
    assert charged(alice) == 1


def test_a_form_with_base64_and_a_json_body_with_json_values(api, alice):
    form = api.post(
        PATH,
        f"image_file_b64={base64.urlsafe_b64encode(photo()).decode()}&format=jpg",
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 200 and form["Content-Type"] == "image/jpeg"
    typed = api.post(
        PATH,
        {"image_file_b64": base64.b64encode(photo()).decode(), "crop": True, "test": True},
        content_type="application/json",
    )
    assert typed.status_code == 200, typed.content[:300]
    assert typed["X-Credits-Charged"] == "0" and typed["X-Credits-Calculated"] == "0.25"
    assert typed["X-Width"] == typed["X-Foreground-Width"]
    assert typed["X-Height"] == typed["X-Foreground-Height"]


def test_an_image_url_is_fetched(api, alice, image_host, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    image_host.files["/cat.jpg"] = (photo(), "image/jpeg")
    response = api.post(PATH, {"image_url": image_host.url("/cat.jpg"), "size": "full"})
    assert response.status_code == 200, response.content[:300]
    assert decode_result(response.content).size == (240, 160)


def test_http_basic_works_too(alice_key, alice):
    client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    assert client.post(PATH, {"image_file": upload(photo())}).status_code == 200


# --- every parameter ---------------------------------------------------------------------------


def test_webp_output_keeps_the_alpha(api):
    response = api.post(PATH, {"image_file": upload(photo()), "format": "webp", "size": "full"})
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    image = decode_result(response.content)
    assert image.format == "WEBP" and image.mode == "RGBA" and image.size == (240, 160)
    alpha = np.asarray(image.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255


def test_zip_unpacks_and_recombines_into_the_same_cutout(api):
    fields = {"image_file": upload(photo()), "size": "full"}
    png = api.post(PATH, fields)
    zipped = api.post(PATH, {**fields, "image_file": upload(photo()), "format": "zip"})
    assert zipped.status_code == 200 and zipped["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
    colour = np.asarray(Image.open(io.BytesIO(archive.read("color.jpg"))).convert("RGB"))
    mask = np.asarray(Image.open(io.BytesIO(archive.read("alpha.png"))))
    cutout = np.asarray(decode_result(png.content))
    assert mask.ndim == 2 and np.array_equal(mask, cutout[..., 3])
    opaque = mask == 255
    difference = np.abs(colour[opaque].astype(int) - cutout[..., :3][opaque].astype(int))
    assert difference.mean() < 4  # JPEG's loss only
    assert colour[mask == 0].mean() < 8  # black where alpha is 0


def test_channels_alpha_agrees_with_the_pixian_endpoints_alpha(api, alice_key):
    mask = api.post(PATH, {"image_file": upload(photo()), "channels": "alpha", "size": "full"})
    assert mask.status_code == 200
    ours = np.asarray(decode_result(mask.content))
    assert ours.ndim == 2
    pixian = Client(HTTP_AUTHORIZATION=basic(*alice_key)).post(
        PIXIAN_PATH, {"image": upload(photo())}
    )
    theirs = alpha_of(pixian.content)
    a, b = ours >= 128, theirs >= 128
    assert (a & b).sum() / (a | b).sum() >= 0.99


def test_crop_margin_scale_and_position_shape_the_result(api):
    cropped = api.post(PATH, {"image_file": upload(photo()), "size": "full", "crop": "true"})
    width, height = int(cropped["X-Width"]), int(cropped["X-Height"])
    margin = api.post(
        PATH,
        {"image_file": upload(photo()), "size": "full", "crop": "true", "crop_margin": "10px"},
    )
    assert (int(margin["X-Width"]), int(margin["X-Height"])) == (width + 20, height + 20)
    percent = api.post(
        PATH,
        {"image_file": upload(photo()), "size": "full", "crop": "1", "crop_margin": "10% 0"},
    )
    assert int(percent["X-Width"]) == width
    scaled = api.post(
        PATH,
        {"image_file": upload(photo()), "size": "full", "scale": "50%", "position": "0% 100%"},
    )
    assert (scaled["X-Width"], scaled["X-Height"]) == ("240", "160")
    box = [int(scaled[f"X-Foreground-{n}"]) for n in ("Top", "Left", "Width", "Height")]
    assert box[1] == 0 and box[0] + box[3] == 160
    assert box[2] <= 121 and box[3] <= 81


def test_roi_limits_the_foreground_to_the_region(api):
    response = api.post(
        PATH, {"image_file": upload(photo()), "size": "full", "roi": "0% 0% 50% 100%"}
    )
    assert response.status_code == 200, response.content[:300]
    alpha = alpha_of(response.content)
    assert alpha[:, 120:].max() == 0 and alpha[:, :120].max() == 255
    pixels = api.post(PATH, {"image_file": upload(photo()), "size": "full", "roi": "0 0 120 160"})
    assert np.array_equal(alpha_of(pixels.content), alpha)


@pytest.mark.parametrize(
    ("size", "product"),
    [("PREVIEW", "preview"), ("small", "preview"), ("Regular", "preview"), ("full", "image")]
    + [(name, "image") for name in ("auto", "50MP", "medium", "hd", "4K")],
)
def test_every_size_name_maps_to_its_product_and_bound(size, product):
    parsed = parse_removebg_options({"size": size}, {})
    assert parsed.product == product
    bound = 250_000 if product == "preview" else 25_000_000
    assert parsed.options.max_pixels == parsed.options.max_result_pixels == bound


@pytest.mark.parametrize(
    "spelling", ["#00f", "00F", "0000ff", "#0000FFFF", "#00ff", "blue", "Blue"]
)
def test_bg_color_takes_every_spelling(spelling):
    options = parse_removebg_options({"bg_color": spelling}, {}).options
    assert options.background_color == (0, 0, 255)


def test_bg_color_paints_the_background(api):
    for spelling in ("#00f", "blue"):
        response = api.post(
            PATH, {"image_file": upload(photo()), "size": "full", "bg_color": spelling}
        )
        assert response.status_code == 200, (spelling, response.content[:300])
        assert response["Content-Type"] == "image/jpeg"
        corner = np.asarray(decode_result(response.content))[0, 0]
        assert corner[2] > 200 and corner[0] < 40, spelling


def test_a_background_image_by_url_or_file_is_composited(api, image_host, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    red = encode(Image.new("RGB", (50, 50), (255, 0, 0)))
    image_host.files["/red.png"] = (red, "image/png")
    by_url = api.post(
        PATH,
        {"image_file": upload(photo()), "size": "full", "bg_image_url": image_host.url("/red.png")},
    )
    assert by_url.status_code == 200, by_url.content[:300]
    assert tuple(np.asarray(decode_result(by_url.content))[0, 0]) >= (200, 0, 0)
    by_file = api.post(
        PATH,
        {"image_file": upload(photo()), "bg_image_file": upload(red, "red.png"), "format": "png"},
    )
    assert by_file.status_code == 200 and by_file["Content-Type"] == "image/png"
    assert decode_result(by_file.content).mode == "RGB"


def test_shadow_and_type_parameters_are_accepted_and_ignored(api):
    plain = api.post(PATH, {"image_file": upload(photo()), "size": "full"})
    ignored = api.post(
        PATH,
        {
            "image_file": upload(photo()),
            "size": "full",
            "type": "car",
            "type_level": "2",
            "add_shadow": "true",
            "shadow_type": "drop",
            "shadow_opacity": "anything",
            "shadow_method": "x",
            "semitransparency": "maybe",
        },
    )
    assert ignored.status_code == 200 and ignored["X-Type"] == "other"
    assert np.array_equal(alpha_of(plain.content), alpha_of(ignored.content))


# --- errors ------------------------------------------------------------------------------------

BAD_VALUES = [
    ("size", "huge", "invalid_size"),
    ("format", "gif", "invalid_format"),
    ("channels", "rgb", "invalid_channels"),
    ("crop", "yes", "invalid_crop"),
    ("crop_margin", "600px", "invalid_crop_margin"),
    ("crop_margin", "51%", "invalid_crop_margin"),
    ("crop_margin", "1px 2px 3px", "invalid_crop_margin"),
    ("scale", "5%", "invalid_scale"),
    ("scale", "50", "invalid_scale"),
    ("position", "left", "invalid_position"),
    ("position", "10% 20% 30%", "invalid_position"),
    ("roi", "0 0 10", "invalid_roi"),
    ("roi", "0% 0 10% 10", "invalid_roi"),
    ("roi", "0% 0% 150% 100%", "invalid_roi"),
    ("roi", "500 500 600 600", "roi_exceeds_bounds"),
    ("roi", "50 50 10 10", "roi_region_empty"),
    ("bg_color", "#12345", "invalid_bg_color"),
    ("bg_color", "notacolour", "invalid_bg_color"),
    ("test", "perhaps", "invalid_test"),
    ("bg_image_url", "ftp://example.com/x.png", "invalid_bg_image_url"),
    ("bg_image_url", "http://10.0.0.1/x.png", "invalid_bg_image_url"),
    ("image_url", "file:///etc/passwd", "invalid_image_url"),
]


@pytest.mark.parametrize(("name", "value", "code"), BAD_VALUES)
def test_each_bad_value_answers_its_code_and_charges_nothing(api, alice, name, value, code):
    fields = {"image_file": upload(photo()), name: value}
    if name == "image_url":
        fields = {name: value}
    detail = assert_error(api.post(PATH, fields), 400, code)
    assert name in detail or "Region" in detail
    assert_nothing_charged(alice)


def test_input_errors_answer_removebgs_codes(api, alice, image_host, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    assert_error(api.post(PATH, {"size": "full"}), 400, "missing_source")
    both = {"image_file": upload(photo()), "image_url": "http://example.com/a.jpg"}
    assert_error(api.post(PATH, both), 400, "multiple_sources")
    assert_error(
        api.post(PATH, {"image_file": upload(b"not an image")}), 400, "failed_to_read_image"
    )
    assert_error(
        api.post(PATH, {"image_file_b64": "!!!"}, content_type="application/json"),
        400,
        "failed_to_read_image",
    )
    pdf = b"%PDF-1.4 a document"
    assert_error(api.post(PATH, {"image_file": upload(pdf)}), 400, "invalid_file_type")
    assert_error(api.post(PATH, {"image_file": upload(tiny_png())}), 400, "invalid_dimensions")
    bomb = bilevel_png(8000, 4001)
    assert_error(api.post(PATH, {"image_file": upload(bomb)}), 400, "resolution_too_high")
    huge = photo() + b"\x00" * (12 * 1024 * 1024)
    assert_error(api.post(PATH, {"image_file": upload(huge)}), 400, "file_too_large")
    missing = image_host.url("/missing")
    assert_error(api.post(PATH, {"image_url": missing}), 400, "failed_image_download")
    bg_missing = {"image_file": upload(photo()), "bg_image_url": missing}
    assert_error(api.post(PATH, bg_missing), 400, "failed_bg_download")
    bg_page = {"image_file": upload(photo()), "bg_image_url": image_host.url("/page.html")}
    assert_error(api.post(PATH, bg_page), 400, "failed_to_read_bg_image")
    two = {"image_file": upload(photo()), "bg_color": "red", "bg_image_url": missing}
    assert_error(api.post(PATH, two), 400, "multiple_bg_sources")
    assert_error(api.post(PATH, "[1, 2]", content_type="application/json"), 400, "invalid_request")
    assert_nothing_charged(alice)


def test_no_foreground_is_unknown_foreground_and_not_charged(api, alice):
    blank = encode(Image.new("RGB", (200, 200), (255, 255, 255)))
    response = api.post(PATH, {"image_file": upload(blank), "roi": "0 0 20 20"})
    assert_error(response, 400, "unknown_foreground")
    assert_nothing_charged(alice)


def test_credentials_are_checked_first_and_refused_with_403(alice, bob):
    fields = {"image_file": upload(photo())}
    assert_error(Client().post(PATH, fields), 403, "auth_failed")
    wrong = Client(HTTP_X_API_KEY="nope:nope")
    assert_error(wrong.post(PATH, {"size": "bogus"}), 403, "auth_failed")
    assert_error(Client(HTTP_X_API_KEY="no-colon").get("/v1.0/account"), 403, "auth_failed")
    broke = Client(HTTP_X_API_KEY=api_key(make_key(bob)))
    assert_error(broke.post(PATH, {"image_file": upload(photo())}), 402, "insufficient_credits")
    test_call = broke.post(PATH, {"image_file": upload(photo()), "test": "true"})
    assert test_call.status_code == 200 and test_call["X-Credits-Charged"] == "0"
    assert_nothing_charged(alice)


def test_a_body_over_the_limit_is_413_and_the_rate_limit_429(api, alice, settings):
    settings.CUTOUT_MAX_UPLOAD_MB = 1
    big = {"image_file": upload(b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024))}
    assert_error(api.post(PATH, big), 413, "request_too_large")
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 1
    limited = api.post(PATH, {"size": "bogus"})
    assert_error(limited, 429, "rate_limit_exceeded")
    assert int(limited["Retry-After"]) >= 1
    assert_nothing_charged(alice)


def test_every_call_is_recorded_in_the_removebg_format(api, alice):
    api.post(PATH, {"image_file": upload(photo())})
    api.post(PATH, {"size": "bogus", "image_file": upload(photo())})
    records = list(CallRecord.objects.order_by("created_at"))
    assert [(r.wire_format, r.status) for r in records] == [("removebg", 200), ("removebg", 400)]
    assert records[0].credits == Decimal("0.25") and records[1].error_code == 2010


def test_an_idempotent_retry_is_charged_once(api, alice):
    fields = {"image_file": upload(photo())}
    first = api.post(PATH, fields, HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(PATH, {"image_file": upload(photo())}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert charged(alice) == Decimal("0.25")


def test_unknown_paths_under_the_prefix_answer_removebgs_404(api):
    assert_error(api.get("/v1.0/nothing"), 404, "not_found")
    assert_error(api.get(PATH), 405, "method_not_allowed")


# --- account and improve -----------------------------------------------------------------------


def test_the_account_reports_the_ledger_in_removebgs_shape(api, alice):
    api.post(PATH, {"image_file": upload(photo())})
    response = api.get("/v1.0/account")
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "attributes": {
                "credits": {"total": 99.75, "subscription": 0, "payg": 99.75, "enterprise": 0},
                "api": {"free_calls": 0, "sizes": "all"},
            }
        }
    }


def test_improve_stores_the_image_for_the_operator_and_charges_nothing(
    api, alice, image_host, settings
):
    response = api.post(
        "/v1.0/improve", {"image_file": upload(photo()), "image_filename": "cat.jpg", "tag": "t1"}
    )
    assert response.status_code == 200, response.content[:300]
    stored = Improvement.objects.get(public_id=response.json()["id"])
    assert (stored.user, stored.filename, stored.tag) == (alice, "cat.jpg", "t1")
    assert stored.image.read() == photo()
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    image_host.files["/cat.jpg"] = (photo(), "image/jpeg")
    by_url = api.post(
        "/v1.0/improve", {"image_url": image_host.url("/cat.jpg")}, content_type="application/json"
    )
    assert by_url.status_code == 200
    assert_error(api.post("/v1.0/improve", {}), 400, "missing_source")
    assert_nothing_charged(alice)


def test_improve_takes_at_most_a_hundred_a_day(api, alice):
    now = timezone.now()
    Improvement.objects.bulk_create(
        Improvement(user=alice, image="improve/x.jpg", size_bytes=1, created_at=now)
        for _ in range(improvements.DAILY_LIMIT)
    )
    response = api.post("/v1.0/improve", {"image_file": upload(photo())})
    assert_error(response, 429, "rate_limit_exceeded")
    assert int(response["Retry-After"]) >= 1


def test_purge_results_deletes_improvements_past_their_retention(api, alice, settings, storage):
    """On local files and on the S3 server (tests/support_s3.py)."""
    settings.CUTOUT_IMPROVE_RETENTION_DAYS = 30
    api.post("/v1.0/improve", {"image_file": upload(photo())})
    old = Improvement.objects.get()
    Improvement.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert storage.names() == [old.image.name]
    call_command("purge_results")
    assert not Improvement.objects.exists()
    assert storage.names() == []
