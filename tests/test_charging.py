"""One charging path, the request fingerprint and the record of every call (issue: "One
charging path, a record of every call, and an engine interface an upstream fits").

Real views, engine (u2netp), ledger and storage through Django's test client; the concurrent
cases on PostgreSQL with real threads and connections."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing import ledger
from removal import errors, limits
from removal.models import CallRecord, Upload
from tests.conftest import make_key
from tests.support_api import PIXIAN_PATH, basic, photo, photo_host, upload
from tests.support_billing import ALICE_CREDITS, give_credits
from tests.test_uploads import CREATE, charges, client_for, render_url

# --- the website's re-render is the API's answer, byte for byte ------------------------------


@pytest.mark.parametrize("max_pixels", [None, "20000"], ids=["full-size", "scaled"])
@pytest.mark.parametrize(
    "fields",
    [
        {"output.format": "png"},
        {"output.format": "jpeg", "background.color": "#2266aa", "output.jpeg_quality": "90"},
        {"output.format": "delta_png"},
        {"result.crop_to_foreground": "true", "result.margin": "5%"},
    ],
    ids=["png", "jpeg-on-colour", "delta-png", "cropped"],
)
def test_a_website_re_render_equals_the_apis_answer(alice, alice_key, fields, max_pixels):
    scale = {"max_pixels": max_pixels} if max_pixels else {}
    image = photo("astronaut", (300, 200))
    web = client_for(alice)
    first = web.post(CREATE, {"image": upload(image), **scale})
    assert first.status_code == 200, first.content
    rendered = web.post(render_url(first["X-Upload-Id"]), {**fields, **scale})
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    answered = api.post(PIXIAN_PATH, {"image": upload(image), **fields, **scale})
    assert rendered.status_code == answered.status_code == 200
    assert rendered.content == answered.content
    for header in ("Content-Type", "X-Input-Size", "X-Result-Size", "X-Result-Foreground"):
        assert rendered[header] == answered[header], header
    assert rendered["X-Credits-Charged"] == "0"


# --- concurrent first production renders of a test-mode upload --------------------------------


def render_at_once(user, public_id: str, count: int = 4) -> list:
    barrier = threading.Barrier(count)
    answers: list = []

    def render() -> None:
        client = client_for(user)
        barrier.wait()
        try:
            answers.append(client.post(render_url(public_id), {"output.format": "png"}))
        finally:
            connection.close()

    threads = [threading.Thread(target=render) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


@pytest.mark.postgres
@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_production_renders_pay_once_or_not_at_all(bob):
    trial = client_for(bob).post(CREATE, {"image": upload(photo()), "test": "true"})
    assert trial.status_code == 200 and trial["X-Credits-Charged"] == "0"
    public_id = trial["X-Upload-Id"]

    broke = render_at_once(bob, public_id)
    assert [a.status_code for a in broke] == [402] * 4
    assert not Upload.objects.get(public_id=public_id).paid
    assert charges(bob) == []

    give_credits(bob, Decimal(1))
    paid = render_at_once(bob, public_id)
    assert [a.status_code for a in paid] == [200] * 4
    assert sorted(a["X-Credits-Charged"] for a in paid) == ["0", "0", "0", "1"]
    assert charges(bob) == [Decimal(-1)] and ledger.balance(bob) == 0
    assert Upload.objects.get(public_id=public_id).paid
    assert ledger.check() == []


def test_a_production_render_the_balance_cannot_pay_is_402_and_stays_unpaid(bob):
    client = client_for(bob)
    trial = client.post(CREATE, {"image": upload(photo()), "test": "true"})
    refused = client.post(render_url(trial["X-Upload-Id"]), {"output.format": "png"})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == 4020
    assert not Upload.objects.get(public_id=trial["X-Upload-Id"]).paid
    give_credits(bob, Decimal(1))
    bad = client.post(render_url(trial["X-Upload-Id"]), {"result.target_size": "x"})
    assert bad.status_code == 400 and charges(bob) == []


# --- Idempotency-Key and the request's fingerprint ---------------------------------------------


def test_a_key_reused_with_another_image_is_422_and_not_charged(alice, alice_key):
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    first = api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="order-7")
    assert first.status_code == 200
    other = api.post(
        PIXIAN_PATH, {"image": upload(photo("coffee"))}, HTTP_IDEMPOTENCY_KEY="order-7"
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == errors.IDEMPOTENCY_KEY_REUSED
    other_options = api.post(
        PIXIAN_PATH, {"image": upload(photo()), "test": "true"}, HTTP_IDEMPOTENCY_KEY="order-7"
    )
    assert other_options.status_code == 422
    assert charges(alice) == [Decimal(-1)]


def test_a_retry_with_a_new_multipart_boundary_and_field_order_is_replayed(alice, alice_key):
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    image = photo()
    first = api.post(
        PIXIAN_PATH,
        {"image": upload(image, "a.jpeg"), "output.format": "png", "max_pixels": "20000"},
        HTTP_IDEMPOTENCY_KEY="retry-1",
    )
    boundary = "----retry-with-another-boundary-0123456789"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="max_pixels"\r\n\r\n 20000\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="b.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="output.format"\r\n\r\n'
            f"PNG\r\n--{boundary}--\r\n"
        ).encode()
    )
    again = api.post(
        PIXIAN_PATH,
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_IDEMPOTENCY_KEY="retry-1",
    )
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert charges(alice) == [Decimal(-1)]


def test_a_retried_url_request_is_the_same_request(alice, alice_key, settings):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    with photo_host({"/cat.jpg": photo()}) as base:
        fields = {"image.url": f"{base}/cat.jpg"}
        first = api.post(PIXIAN_PATH, fields, HTTP_IDEMPOTENCY_KEY="by-url")
        again = api.post(PIXIAN_PATH, fields, HTTP_IDEMPOTENCY_KEY="by-url")
        moved = api.post(
            PIXIAN_PATH, {"image.url": f"{base}/other.jpg"}, HTTP_IDEMPOTENCY_KEY="by-url"
        )
    assert first.status_code == again.status_code == 200 and again.content == first.content
    assert moved.status_code == 422
    assert charges(alice) == [Decimal(-1)]


# --- the record of every call -----------------------------------------------------------------


def only_record(user, **filters) -> CallRecord:
    (record,) = CallRecord.objects.filter(user=user, **filters)
    return record


def test_a_successful_call_is_recorded_with_what_it_cost(alice, alice_key):
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    response = api.post(PIXIAN_PATH, {"image": upload(photo())})
    record = only_record(alice)
    assert (record.channel, record.wire_format, record.endpoint) == (
        "api",
        "pixian",
        "pixian:remove-background",
    )
    assert record.api_key.key_id == alice_key[0]
    assert (record.status, record.error_code, record.test, record.replay) == (
        200,
        None,
        False,
        False,
    )
    assert record.credits == Decimal(1) == -charges(alice)[0]
    assert record.input_bytes == len(photo()) and record.input_pixels == 240 * 160
    assert record.output_bytes == len(response.content) and record.output_pixels == 240 * 160
    assert record.engine == "local" and record.request_id == response["X-Request-Id"]
    assert record.duration_ms > 0


def test_a_test_call_and_its_replay_are_recorded_free(alice, alice_key):
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    fields = {"image": upload(photo()), "test": "true"}
    api.post(PIXIAN_PATH, fields, HTTP_IDEMPOTENCY_KEY="t-1")
    paid = {"image": upload(photo())}
    api.post(PIXIAN_PATH, paid, HTTP_IDEMPOTENCY_KEY="p-1")
    api.post(PIXIAN_PATH, {"image": upload(photo())}, HTTP_IDEMPOTENCY_KEY="p-1")
    test_call = only_record(alice, test=True)
    assert (test_call.status, test_call.credits) == (200, Decimal(0))
    first, replay = CallRecord.objects.filter(user=alice, test=False).order_by("pk")
    assert (first.credits, first.replay) == (Decimal(1), False)
    assert (replay.status, replay.credits, replay.replay) == (200, Decimal(0), True)
    assert sum(r.credits for r in CallRecord.objects.filter(user=alice)) == -sum(charges(alice))


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"image": "not-a-file", "output.format": "gif"}, 400, errors.BAD_OUTPUT_FORMAT),
        ({"image": b"not an image"}, 400, errors.UNREADABLE_IMAGE),
        ({}, 400, errors.NO_IMAGE),
    ],
    ids=["bad-option", "bad-image", "no-image"],
)
def test_a_refused_call_is_recorded_with_its_code_and_nothing_charged(
    alice, alice_key, fields, status, code
):
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    if isinstance(fields.get("image"), bytes):
        fields = {"image": upload(fields["image"])}
    api.post(PIXIAN_PATH, fields)
    record = only_record(alice)
    assert (record.status, record.error_code, record.credits) == (status, code, Decimal(0))
    assert charges(alice) == []


def test_a_402_is_recorded(bob):
    api = Client(HTTP_AUTHORIZATION=basic(*make_key(bob)))
    api.post(PIXIAN_PATH, {"image": upload(photo())})
    record = only_record(bob)
    assert (record.status, record.error_code, record.credits) == (402, 4020, Decimal(0))
    assert record.input_pixels == 240 * 160


def test_an_engine_failure_is_recorded_as_500_and_charges_nothing(alice, alice_key, settings):
    settings.CUTOUT_CREDITS_PER_IMAGE = "one"  # an operator's typo: a failure no input explains
    Client(HTTP_AUTHORIZATION=basic(*alice_key)).post(PIXIAN_PATH, {"image": upload(photo())})
    record = only_record(alice)
    assert (record.status, record.error_code, record.credits) == (500, errors.INTERNAL, 0)


def test_401s_and_429s_past_the_first_in_a_minute_are_counted_not_recorded(
    alice, alice_key, settings
):
    wrong = Client(HTTP_AUTHORIZATION=basic(alice_key[0], "x" * 32))
    for _ in range(3):
        assert wrong.post(PIXIAN_PATH, {"image": upload(photo())}).status_code == 401
    refused = only_record(alice, status=401)
    assert (refused.error_code, refused.repeats, refused.api_key.key_id) == (4002, 2, alice_key[0])

    settings.CUTOUT_CONCURRENCY_LIMIT = 1
    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    with limits.in_flight(f"user:{alice.pk}"):
        for _ in range(4):
            assert api.post(PIXIAN_PATH, {"image": upload(photo())}).status_code == 429
    limited = only_record(alice, status=429)
    assert (limited.error_code, limited.repeats) == (4290, 3)


def test_an_unknown_key_id_is_recorded_nowhere(alice):
    Client(HTTP_AUTHORIZATION=basic("nosuchkey000000", "x" * 32)).post(PIXIAN_PATH)
    assert not CallRecord.objects.exists()


def test_website_uploads_and_re_renders_are_recorded_with_their_credits(alice):
    client = client_for(alice)
    trial = client.post(CREATE, {"image": upload(photo()), "test": "true"})
    client.post(render_url(trial["X-Upload-Id"]), {"background.color": "#ff0000"})
    client.post(render_url(trial["X-Upload-Id"]), {"output.format": "jpeg"})
    records = list(CallRecord.objects.filter(user=alice).order_by("pk"))
    assert [(r.channel, r.endpoint, r.test, r.credits) for r in records] == [
        ("website", "website:upload", True, Decimal(0)),
        ("website", "website:render", False, Decimal(1)),
        ("website", "website:render", False, Decimal(0)),
    ]
    assert records[0].input_pixels == 240 * 160 and records[1].output_bytes > 0
    assert ledger.balance(alice) == ALICE_CREDITS - 1


def test_old_call_records_are_purged_in_batches(alice, alice_key, settings):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from removal import calls

    api = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    for _ in range(3):
        api.get("/api/v2/account")
    CallRecord.objects.filter(
        pk__in=list(CallRecord.objects.values_list("pk", flat=True)[:2])
    ).update(
        created_at=timezone.now() - timedelta(days=settings.CUTOUT_CALL_RECORD_RETENTION_DAYS + 1)
    )
    call_command("purge_results")
    assert CallRecord.objects.count() == 1
    assert calls.purge_expired() == 0
