"""Baidu's segment API and its tokens (spec/baidu-segment.md) through Django's test client:
the real views, engine (u2netp), ledger and error handlers. Every error path has its test:
HTTP 200 (segment) or OAuth's status, Baidu's code, and nothing charged."""

import base64
import io
import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from billing import ledger
from billing.models import CreditAccount, LedgerEntry
from removal import keys, limits, request_ids, tokens
from removal.models import AccessToken, ApiKey, CallRecord
from tests.conftest import make_key
from tests.support_api import (
    PIXIAN_PATH,
    alpha_of,
    basic,
    bilevel_png,
    encode,
    photo,
    photo_host,
    upload,
)
from tests.support_billing import ALICE_CREDITS

TOKEN_PATH = "/oauth/2.0/token"
SEGMENT_PATH = "/rest/2.0/image-process/v1/segment"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def token_for(client: Client, key: tuple[str, str]) -> str:
    response = client.get(
        TOKEN_PATH,
        {"grant_type": "client_credentials", "client_id": key[0], "client_secret": key[1]},
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def token(client, alice_key) -> str:
    return token_for(client, alice_key)


def segment(
    client: Client,
    token: str | None,
    fields: dict,
    *,
    as_json: bool = True,
    content_type: str = "application/json",
    **headers: str,
):
    """POST to the segment endpoint, the token in the query as Baidu's clients send it."""
    path = SEGMENT_PATH if token is None else f"{SEGMENT_PATH}?access_token={token}"
    body = json.dumps(fields) if as_json else urlencode(fields)
    if not as_json and content_type == "application/json":
        content_type = "application/x-www-form-urlencoded"
    return client.post(path, body, content_type=content_type, **headers)


def charges(user) -> list[Decimal]:
    return [e.amount for e in LedgerEntry.objects.filter(account__user=user, kind="charge")]


def assert_baidu_error(response, code: int) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"error_code", "error_msg", "log_id"}, body
    assert body["error_code"] == code, body
    assert body["log_id"] == request_ids.log_id(response["X-Request-Id"])
    assert 0 < body["log_id"] < 2**53
    return body


def result_image(response) -> Image.Image:
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"log_id", "image"}, {k: str(v)[:80] for k, v in body.items()}
    assert body["log_id"] == request_ids.log_id(response["X-Request-Id"])
    image = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    image.load()
    return image


PHOTO = photo("chelsea", None)  # 451 x 300


# --- the token ----------------------------------------------------------------------------------


def test_a_token_by_get_has_the_spec_fields_and_is_stored_only_as_an_hmac(client, alice_key):
    response = client.get(
        TOKEN_PATH,
        {
            "grant_type": "client_credentials",
            "client_id": alice_key[0],
            "client_secret": alice_key[1],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "scope",
        "refresh_token",
        "session_key",
        "session_secret",
    }
    assert body["expires_in"] == 2592000
    assert "brain_all_scope" in body["scope"].split(" ")
    assert response["Cache-Control"] == "no-store"
    stored = AccessToken.objects.get()
    assert stored.api_key.key_id == alice_key[0]
    assert stored.token_hmac == keys.hash_secret(body["access_token"])
    assert body["access_token"] not in str(list(AccessToken.objects.values()))
    lifetime = stored.expires_at - stored.created_at
    assert lifetime == timedelta(days=30)


@pytest.mark.parametrize("where", ["query", "form", "multipart"])
def test_a_token_by_post_takes_the_query_or_a_form_body(client, alice_key, where):
    params = {
        "grant_type": "client_credentials",
        "client_id": alice_key[0],
        "client_secret": alice_key[1],
    }
    if where == "query":
        response = client.post(f"{TOKEN_PATH}?{urlencode(params)}")
    elif where == "form":
        response = client.post(
            TOKEN_PATH, urlencode(params), content_type="application/x-www-form-urlencoded"
        )
    else:
        response = client.post(TOKEN_PATH, params)
    assert response.status_code == 200, response.content
    assert tokens.verify(response.json()["access_token"]).key_id == alice_key[0]


@pytest.mark.parametrize("grant", ["refresh_token", "password", "authorization_code", ""])
def test_any_other_grant_is_unsupported_grant_type(client, alice_key, grant):
    response = client.get(
        TOKEN_PATH,
        {"grant_type": grant, "client_id": alice_key[0], "client_secret": alice_key[1]},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert not AccessToken.objects.exists()


def test_bad_clients_are_invalid_client_as_baidu_words_it(client, alice, alice_key):
    def ask(client_id: str | None, secret: str | None):
        params = {"grant_type": "client_credentials"}
        if client_id is not None:
            params["client_id"] = client_id
        if secret is not None:
            params["client_secret"] = secret
        return client.get(TOKEN_PATH, params)

    for response, description in [
        (ask("nosuchkey", alice_key[1]), "unknown client id"),
        (ask(None, alice_key[1]), "unknown client id"),
        (ask(alice_key[0], "wrong"), "Client authentication failed"),
        (ask(alice_key[0], None), "Client authentication failed"),
    ]:
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_client", "error_description": description}
    keys.revoke(ApiKey.objects.get(key_id=alice_key[0]))
    response = ask(*alice_key)
    assert response.status_code == 401
    assert response.json()["error_description"] == "Client authentication failed"
    assert not AccessToken.objects.exists()


def test_failed_token_requests_count_toward_the_auth_failure_limit(client, alice_key, settings):
    settings.CUTOUT_API_AUTH_FAILURE_LIMIT = 3
    for _ in range(3):
        params = {"grant_type": "client_credentials", "client_id": alice_key[0]}
        assert client.get(TOKEN_PATH, {**params, "client_secret": "wrong"}).status_code == 401
    response = client.get(
        TOKEN_PATH,
        {
            "grant_type": "client_credentials",
            "client_id": alice_key[0],
            "client_secret": alice_key[1],
        },
    )
    assert response.status_code == 429
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response["Retry-After"]) >= 1


def test_a_key_keeps_at_most_100_live_tokens_the_oldest_going_first(client, alice, alice_key):
    api_key = ApiKey.objects.get(key_id=alice_key[0])
    first = tokens.issue(api_key).token
    later = [tokens.issue(api_key).token for _ in range(tokens.MAX_LIVE_PER_KEY)]
    assert AccessToken.objects.filter(api_key=api_key).count() == 100
    assert_baidu_error(segment(client, first, {"image": b64(PHOTO)}), 110)
    assert tokens.verify(later[0]) == api_key
    assert charges(alice) == []


def test_purge_results_deletes_expired_tokens_only(client, alice_key, capsys):
    live = token_for(client, alice_key)
    expired = token_for(client, alice_key)
    AccessToken.objects.filter(token_hmac=keys.hash_secret(expired)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    call_command("purge_results")
    assert "1 expired access token " in capsys.readouterr().out
    assert list(AccessToken.objects.values_list("token_hmac", flat=True)) == [
        keys.hash_secret(live)
    ]


def test_the_token_endpoint_answers_oauth_json_for_other_methods_and_paths(client):
    response = client.put(TOKEN_PATH)
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    response = client.get("/oauth/2.0/authorize")
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"


# --- the segment endpoint: success ----------------------------------------------------------------


def test_segment_answers_a_transparent_png_in_base64_and_charges_one_credit(client, alice, token):
    image = result_image(segment(client, token, {"image": b64(PHOTO), "method": "auto"}))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (451, 300)
    assert image.getchannel("A").getextrema() == (0, 255)
    assert charges(alice) == [Decimal(-1)]
    assert ledger.balance(alice) == ALICE_CREDITS - 1
    record = CallRecord.objects.get(wire_format="baidu")
    assert (record.endpoint, record.credits, record.status) == ("baidu:segment", 1, 200)
    assert CallRecord.objects.get(wire_format="baidu-oauth").endpoint == "baidu:token"


def test_a_json_body_is_json_whatever_its_content_type(client, alice, token):
    # A bad value (216100) shows the body was read as JSON: read as a form it has no image
    # (216101). Nothing else needs the work, so only the last call runs it.
    fields = {"image": b64(PHOTO), "return_form": "jpeg"}
    for content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        assert_baidu_error(segment(client, token, fields, content_type=content_type), 216100)
    fields = {"image": b64(PHOTO), "return_form": "mask"}
    assert result_image(segment(client, token, fields, content_type="")).size == (451, 300)
    assert charges(alice) == [Decimal(-1)]


def test_a_form_body_as_the_sdk_posts_it_with_its_extra_query_parameters(client, alice, token):
    path = f"{SEGMENT_PATH}?access_token={token}&aipSdk=python&aipVersion=4.16.13"
    body = urlencode(
        {
            "image": b64(PHOTO),
            "method": "control",
            "position": json.dumps([[[100, 20], [400, 290]]]),
        }
    )
    response = client.post(path, body, content_type="application/x-www-form-urlencoded")
    assert result_image(response).size == (451, 300)
    assert charges(alice) == [Decimal(-1)]


def test_the_token_may_come_in_the_body(client, alice, token):
    # Past the token (not 100): the missing image is the first thing wrong.
    assert_baidu_error(segment(client, None, {"access_token": token}), 216101)
    assert_baidu_error(segment(client, None, {"access_token": "24.nope"}), 110)


def test_image_wins_over_url(client, bob, settings):
    # Bob has no credits: 19 means the image passed every check (the url would be 282111).
    token = token_for(client, make_key(bob))
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    with photo_host({}) as host:
        fields = {"image": b64(PHOTO), "url": f"{host}/missing.jpeg"}
        assert_baidu_error(segment(client, token, fields), 19)
        assert_baidu_error(segment(client, token, {"url": f"{host}/missing.jpeg"}), 282111)


def test_a_url_is_fetched(client, alice, token, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    with photo_host({"/cat.jpeg": PHOTO}) as host:
        image = result_image(segment(client, token, {"url": f"{host}/cat.jpeg"}))
    assert image.size == (451, 300)
    assert charges(alice) == [Decimal(-1)]


def test_refine_mask_false_answers_the_raw_map(client, alice, token):
    fields = {"image": b64(PHOTO), "refine_mask": "false"}
    image = result_image(segment(client, token, fields))
    assert image.mode == "RGBA" and image.size == (451, 300)
    assert charges(alice) == [Decimal(-1)]


def test_mask_agrees_with_the_pixian_endpoints_alpha(client, alice, alice_key, token):
    mask = result_image(segment(client, token, {"image": b64(PHOTO), "return_form": "mask"}))
    assert mask.mode == "L" and mask.size == (451, 300)
    values = np.asarray(mask)
    assert set(np.unique(values)) <= {0, 255}
    pixian = client.post(
        PIXIAN_PATH, {"image": upload(PHOTO)}, HTTP_AUTHORIZATION=basic(*alice_key)
    )
    assert pixian.status_code == 200
    ours, theirs = values >= 128, alpha_of(pixian.content) >= 128
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou >= 0.99


def two_subjects() -> tuple[bytes, list]:
    """Two photos' subjects pasted side by side on a plain background (800 x 300), and a
    box around each."""
    canvas = Image.new("RGB", (800, 300), (236, 236, 232))
    cat = Image.open(io.BytesIO(photo("chelsea", (300, 200))))
    rocket = Image.open(io.BytesIO(photo("astronaut", (200, 200))))
    canvas.paste(cat, (30, 50))
    canvas.paste(rocket, (540, 50))
    boxes = [[[20, 40], [340, 260]], [[530, 40], [750, 260]]]
    return encode(canvas, "JPEG", quality=92), boxes


def test_control_boxes_find_each_subject_and_nothing_outside(client, alice, token):
    data, boxes = two_subjects()
    fields = {"image": b64(data), "method": "control", "position": boxes, "return_form": "mask"}
    mask = np.asarray(result_image(segment(client, token, fields))) >= 128
    inside = np.zeros_like(mask)
    for (x1, y1), (x2, y2) in boxes:
        inside[y1:y2, x1:x2] = True
        assert mask[y1:y2, x1:x2].mean() > 0.2
    assert not mask[~inside].any()
    assert charges(alice) == [Decimal(-1)]


def test_an_idempotency_key_replays_the_answer_and_charges_once(client, alice, token):
    fields = {"image": b64(PHOTO)}
    first = segment(client, token, fields, HTTP_IDEMPOTENCY_KEY="baidu-1")
    again = segment(client, token, fields, HTTP_IDEMPOTENCY_KEY="baidu-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert charges(alice) == [Decimal(-1)]


# --- the segment endpoint: every error, HTTP 200 and nothing charged -----------------------


def test_no_token_is_100(client, alice):
    assert_baidu_error(segment(client, None, {"image": b64(PHOTO)}), 100)
    assert_baidu_error(segment(client, "", {"image": b64(PHOTO)}), 100)
    assert charges(alice) == []


def test_an_unknown_token_is_110(client, alice):
    body = assert_baidu_error(segment(client, "24.nope", {"image": b64(PHOTO)}), 110)
    assert body["error_msg"] == "Access token invalid or no longer valid"


def test_an_expired_token_is_111(client, alice, token):
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    body = assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 111)
    assert body["error_msg"] == "Access token expired"
    assert charges(alice) == []


def test_a_token_of_a_revoked_key_is_110(client, alice, alice_key, token):
    keys.revoke(ApiKey.objects.get(key_id=alice_key[0]))
    assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 110)
    assert charges(alice) == []


def test_a_token_dies_with_its_keys_deletion_too(client, alice, alice_key, token):
    ApiKey.objects.filter(key_id=alice_key[0]).delete()
    assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 110)


def test_bad_tokens_count_toward_the_auth_failure_limit(client, alice, token, settings):
    settings.CUTOUT_API_AUTH_FAILURE_LIMIT = 2
    for _ in range(2):
        assert_baidu_error(segment(client, "24.nope", {"image": b64(PHOTO)}), 110)
    assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 18)
    assert charges(alice) == []


def test_the_rate_limit_is_18(client, alice, token, settings):
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 1
    assert_baidu_error(segment(client, token, {"image": b64(PHOTO), "method": "x"}), 216100)
    response = segment(client, token, {"image": b64(PHOTO)})
    assert_baidu_error(response, 18)
    assert int(response["Retry-After"]) >= 1
    assert charges(alice) == []


def test_the_concurrency_limit_is_18(client, alice, token, settings):
    settings.CUTOUT_CONCURRENCY_LIMIT = 1
    slot = limits.acquire_slot(f"user:{alice.pk}", 1)
    try:
        assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 18)
    finally:
        limits.release_slot(*slot)
    assert charges(alice) == []


def test_the_token_comes_before_the_rate_limit(client, alice, settings):
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 1
    for _ in range(3):
        assert_baidu_error(segment(client, "24.nope", {"image": b64(PHOTO)}), 110)


BOXES = [[[10, 10], [200, 200]]]


@pytest.mark.parametrize(
    "fields",
    [
        {"return_form": "png"},
        {"return_form": 1},
        {"refine_mask": "maybe"},
        {"method": "manual"},
        {"method": "control", "position": "not json"},
        {"method": "control", "position": []},
        {"method": "control", "position": "[]"},
        {"method": "control", "position": [[[0, 0]]]},
        {"method": "control", "position": [[[10, 10], [5, 5]]]},
        {"method": "control", "position": [[[-1, 0], [5, 5]]]},
        {"method": "control", "position": [[["a", 0], [5, 5]]]},
        {"method": "control", "position": BOXES * 11},
        {"method": "control", "position": "[[[NaN, 0], [50, 50]]]"},
        {"method": "control", "position": "[[[0, 0], [1e400, 50]]]"},
        {"method": "control", "position": "[[[0, 0], [Infinity, 50]]]"},
        {"url": "http://example.com/" + "a" * 1020},
        {"url": 12},
    ],
    ids=repr,
)
def test_every_bad_parameter_is_216100(client, alice, token, fields):
    if "url" not in fields:
        fields = {"image": b64(PHOTO), **fields}
    body = assert_baidu_error(segment(client, token, fields), 216100)
    assert body["error_msg"].startswith("invalid param: ")
    assert charges(alice) == []


@pytest.mark.parametrize(
    "body", [b'{"image": ', b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"{\xff}"]
)
def test_a_body_that_starts_like_json_but_is_not_is_216100(client, alice, token, body):
    response = client.post(
        f"{SEGMENT_PATH}?access_token={token}", body, content_type="application/json"
    )
    assert_baidu_error(response, 216100)


@pytest.mark.parametrize(
    "fields",
    [{}, {"method": "auto"}, {"image": b64(PHOTO), "method": "control"}, {"url": ""}],
    ids=repr,
)
def test_a_missing_parameter_is_216101(client, alice, token, fields):
    body = assert_baidu_error(segment(client, token, fields), 216101)
    assert body["error_msg"].startswith("not enough param: ")
    assert charges(alice) == []


@pytest.mark.parametrize(
    "boxes",
    [
        [[[0, 0], [9, 200]]],
        [[[445, 10], [500, 100]]],
        [[[10, 10], [200, 200]], [[600, 0], [700, 50]]],
    ],
    ids=repr,
)
def test_a_box_under_10_by_10_pixels_inside_the_image_is_216100(client, alice, token, boxes):
    fields = {"image": b64(PHOTO), "method": "control", "position": boxes}
    assert_baidu_error(segment(client, token, fields), 216100)
    assert charges(alice) == []


def test_an_empty_image_is_216200(client, alice, token):
    assert_baidu_error(segment(client, token, {"image": ""}), 216200)
    assert_baidu_error(segment(client, token, {"image": "", "url": "http://example.com/a"}), 216200)
    assert charges(alice) == []


def heic_bytes() -> bytes:
    import pillow_heif

    image = Image.open(io.BytesIO(PHOTO))
    heif = pillow_heif.from_pillow(image)
    buffer = io.BytesIO()
    heif.save(buffer, quality=80)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "HEIC", "garbage", "not base64"])
def test_formats_other_than_jpg_png_webp_bmp_are_216201(client, alice, token, fmt):
    image = Image.open(io.BytesIO(PHOTO))
    if fmt == "HEIC":
        text = b64(heic_bytes())
    elif fmt == "garbage":
        text = b64(b"this is no image at all" * 20)
    elif fmt == "not base64":
        text = "@@@ not base64 @@@"
    else:
        text = b64(encode(image, fmt))
    assert_baidu_error(segment(client, token, {"image": text}), 216201)
    assert charges(alice) == []


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP"])
def test_png_webp_and_bmp_are_accepted(client, bob, fmt):
    # Bob has no credits: 19 comes after every check of the image.
    token = token_for(client, make_key(bob))
    data = encode(Image.open(io.BytesIO(PHOTO)), fmt)
    assert_baidu_error(segment(client, token, {"image": b64(data)}), 19)


@pytest.mark.parametrize("size", [(127, 300), (300, 127), (3001, 200), (200, 3001)])
def test_sides_outside_128_to_3000_are_216202(client, alice, token, size):
    body = assert_baidu_error(segment(client, token, {"image": b64(bilevel_png(*size))}), 216202)
    assert body["error_msg"].startswith("image size error: ")
    assert charges(alice) == []


def test_sides_of_128_and_3000_are_accepted(client, bob):
    token = token_for(client, make_key(bob))
    image = Image.open(io.BytesIO(PHOTO)).resize((3000, 128))
    data = encode(image, "JPEG", quality=80)
    assert_baidu_error(segment(client, token, {"image": b64(data)}), 19)


def test_an_image_over_10_mb_of_base64_is_216202(client, alice, token):
    text = b64(PHOTO) + "A" * (10 * 1024 * 1024)
    assert_baidu_error(segment(client, token, {"image": text}), 216202)
    assert charges(alice) == []


def test_a_body_over_the_upload_cap_is_216202_not_413(client, alice, token, settings):
    settings.CUTOUT_MAX_UPLOAD_MB = 1
    text = "A" * (2 * 1024 * 1024)
    assert_baidu_error(segment(client, token, {"image": text}), 216202)
    # With the token in the body, the body cannot be read for it: the same answer.
    assert_baidu_error(segment(client, None, {"image": text, "access_token": token}), 216202)
    assert charges(alice) == []


def test_a_url_that_cannot_be_fetched_is_282111(client, alice, token, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    with photo_host({}) as host:
        assert_baidu_error(segment(client, token, {"url": f"{host}/missing.jpeg"}), 282111)
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = False
    assert_baidu_error(segment(client, token, {"url": "http://127.0.0.1/a.jpeg"}), 282111)
    assert_baidu_error(segment(client, token, {"url": "ftp://example.com/a.jpeg"}), 282111)
    assert charges(alice) == []


def test_no_credits_is_19(client, bob):
    token = token_for(client, make_key(bob))
    body = assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 19)
    assert body["error_msg"] == "Open api total request limit reached"
    assert charges(bob) == []


def test_lapsed_credits_are_19(client, alice, token):
    CreditAccount.objects.filter(user=alice).update(use_before=timezone.now() - timedelta(days=1))
    assert_baidu_error(segment(client, token, {"image": b64(PHOTO)}), 19)
    assert charges(alice) == []


def test_image_errors_come_before_the_balance(client, bob):
    token = token_for(client, make_key(bob))
    assert_baidu_error(segment(client, token, {"image": b64(bilevel_png(100, 100))}), 216202)
    assert_baidu_error(segment(client, token, {"image": b64(PHOTO), "method": "x"}), 216100)


def test_other_methods_and_paths_under_rest_are_code_3_with_http_200(client, token):
    assert_baidu_error(client.get(f"{SEGMENT_PATH}?access_token={token}"), 3)
    assert_baidu_error(client.post("/rest/2.0/image-process/v1/nothing"), 3)


def test_each_call_writes_its_log_id_to_the_log(client, alice, token, caplog):
    caplog.set_level("INFO", logger="removal.api.baidu.views")
    response = segment(client, token, {"image": ""})
    log_id = assert_baidu_error(response, 216200)["log_id"]
    assert f"log_id={log_id} " in caplog.text
    assert response["X-Request-Id"] in caplog.text
