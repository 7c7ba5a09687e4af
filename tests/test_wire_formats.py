"""A wire format is an addition (removal/api/formats.py): a format registered from this test
module gets its routes, its 404/405 answers, its own error JSON and a status override, without
any other module knowing of it. Also the parts the next formats reuse: request ids as Baidu's
`log_id`, the `Accept` test and an idempotent replay that is the first answer's very bytes."""

import json

import pytest
from django.test import Client
from django.urls import clear_url_caches, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from removal import errors, request_ids
from removal.api import formats
from removal.api.renderers import accepts_json
from removal.errors import RemovalError
from tests.support_api import PIXIAN_PATH, basic, photo, upload


class EchoView(APIView):
    wire_format = "fake"

    def get(self, request: Request) -> Response:
        if request.query_params.get("fail"):
            raise RemovalError(errors.BAD_OPTION, "fail was given.")
        return Response({"email": request.user.email})


def render_fake(
    error: RemovalError, status: int, context: formats.ErrorContext
) -> formats.ErrorAnswer:
    body = {"problem": error.code, "why": error.message, "trace": context.log_id}
    return formats.ErrorAnswer(body, {"X-Fake-Format": "yes"})


FAKE = formats.WireFormat(
    name="fake",
    prefix="/fake/v1/",
    render_error=render_fake,
    routes=[path("fake/v1/echo", EchoView.as_view())],
    statuses={errors.NO_CREDENTIALS: 403, errors.BAD_CREDENTIALS: 403},
)


@pytest.fixture
def fake_format():
    formats.register(FAKE)
    clear_url_caches()
    yield FAKE
    formats.unregister(FAKE.name)
    clear_url_caches()


def test_a_registered_format_is_routed_and_answers_in_its_own_format(fake_format, alice_key):
    ok = Client(HTTP_AUTHORIZATION=basic(*alice_key)).get("/fake/v1/echo")
    assert ok.status_code == 200 and ok.json() == {"email": "alice@example.com"}

    refused = Client().get("/fake/v1/echo")
    assert refused.status_code == 403  # the override; the neutral table says 401
    body = refused.json()
    assert body["problem"] == errors.NO_CREDENTIALS and body["why"]
    assert body["trace"] == request_ids.log_id(refused["X-Request-Id"]) > 0
    assert refused["X-Fake-Format"] == "yes" and refused["Content-Type"] == "application/json"

    failed = Client(HTTP_AUTHORIZATION=basic(*alice_key)).get("/fake/v1/echo?fail=1")
    assert failed.status_code == 400 and failed.json()["why"] == "fail was given."


def test_a_registered_format_gets_its_404_and_405(fake_format, alice_key):
    client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    missing = client.get("/fake/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["problem"] == errors.NOT_FOUND and "X-Fake-Format" in missing

    wrong_method = client.post("/fake/v1/echo")
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "GET, HEAD, OPTIONS"
    assert wrong_method.json()["problem"] == errors.METHOD_NOT_ALLOWED


def test_paths_of_an_unregistered_format_are_web_pages_again(fake_format):
    formats.unregister(FAKE.name)
    clear_url_caches()
    response = Client().get("/fake/v1/echo")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_pixian_paths_keep_their_own_format_beside_another(fake_format):
    response = Client().post(PIXIAN_PATH)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == errors.NO_CREDENTIALS
    assert response["WWW-Authenticate"] == 'Basic realm="Cutout"'


def test_the_openapi_document_lists_public_formats_from_the_registry(fake_format, client):
    document = json.loads(client.get("/api/schema/?format=json").content)
    assert "/fake/v1/echo" in document["paths"]
    formats.unregister(FAKE.name)
    document = json.loads(client.get("/api/schema/?format=json").content)
    assert "/fake/v1/echo" not in document["paths"]


def test_every_error_status_of_the_openapi_document_has_an_example_from_its_format(client):
    document = json.loads(client.get("/api/schema/?format=json").content)
    post = document["paths"]["/api/v2/remove-background"]["post"]
    for status, answer in post["responses"].items():
        if status.startswith(("4", "5")):
            examples = answer["content"]["application/json"]["examples"]
            (example,) = examples.values()
            assert example["value"]["error"]["status"] == int(status)


def test_a_format_must_not_name_codes_the_table_lacks():
    with pytest.raises(ValueError, match="unknown error codes"):
        formats.WireFormat("broken", "/broken/", render_fake, statuses={4999: 403})


def test_an_unknown_code_fails_when_raised_not_with_a_generic_message():
    with pytest.raises(KeyError):
        RemovalError(2098)


def test_one_status_for_every_error_answers_every_code_with_it():
    baidu_like = formats.WireFormat("always", "/always/", render_fake, status_for_every_error=200)
    assert {baidu_like.status_for(code) for code in errors.ERRORS} == {200}


def test_request_ids_carry_a_unique_53_bit_log_id():
    ids = [request_ids.new_request_id() for _ in range(5000)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    log_ids = [request_ids.log_id(i) for i in ids]
    assert len(set(log_ids)) == len(ids)
    assert all(0 < n < 2**53 for n in log_ids)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("application/json, text/plain, */*", True),
        ("image/*, application/json;q=0.5", False),
        ("*/*", False),
        ("", False),
        ("image/png", False),
    ],
)
def test_accepts_json_follows_the_clients_preference(accept, expected):
    request = Request(APIRequestFactory().get("/", HTTP_ACCEPT=accept))
    assert accepts_json(request) is expected


@pytest.mark.parametrize(
    "fields",
    [{"output.format": "jpeg", "background.color": "#00ff00"}, {"output.format": "gif"}],
    ids=["image", "error"],
)
def test_an_idempotent_replay_is_the_first_answers_very_bytes(alice_key, fields):
    client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    first = client.post(
        PIXIAN_PATH, {"image": upload(photo()), **fields}, HTTP_IDEMPOTENCY_KEY="same"
    )
    again = client.post(
        PIXIAN_PATH, {"image": upload(photo()), **fields}, HTTP_IDEMPOTENCY_KEY="same"
    )
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content and again.status_code == first.status_code
    assert again["Content-Type"] == first["Content-Type"]
    replayed = {k: v for k, v in again.items() if k not in ("Idempotent-Replayed", "X-Request-Id")}
    sent = {k: v for k, v in first.items() if k != "X-Request-Id"}
    assert replayed == sent


# Every API endpoint of every format, with an `Accept` no renderer offers (schemathesis sent
# `Accept: bW` to remove.bg's account endpoint and got a 500): negotiation never fails, so the
# answer is the format's own authentication error.
ANY_ACCEPT_ENDPOINTS = [
    ("get", "/api/v2/account", 401),
    ("post", "/api/v2/remove-background", 401),
    ("get", "/v1.0/account", 403),
    ("post", "/v1.0/removebg", 403),
    ("post", "/v1.0/improve", 403),
    ("post", "/oauth/2.0/token", 400),
    ("post", "/rest/2.0/image-process/v1/segment", 200),
    ("get", "/api/v2/batches/00000000-0000-0000-0000-000000000000", 401),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url", "status"), ANY_ACCEPT_ENDPOINTS)
def test_an_accept_header_no_renderer_offers_never_fails_the_request(method, url, status):
    response = getattr(Client(), method)(url, HTTP_ACCEPT="bW")
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    json.loads(response.content)
