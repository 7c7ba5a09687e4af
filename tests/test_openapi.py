"""The OpenAPI document at /api/schema/ is valid, true to the wire format, and its docs page
uses only the project's own assets; schemathesis then fuzzes the API against it.

Schemathesis drives the real WSGI application in-process (view, engine, ledger, error handler)
with Alice's credentials. Its generated `image.url` values are pointed at a local image host so
that no fuzzed URL ever leaves 127.0.0.1. The run is bounded: a fixed number of examples per
operation, no shrinking.
"""

import re
import uuid

import pytest
import schemathesis
import yaml
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from tests.support_api import basic, photo

SCHEMA_PATH = "/api/schema/?format=json"

# The API's rules cannot all be written in a schema (the image must decode; blank options count
# as absent), so acceptance and rejection of generated data are not checked; everything the
# response promises is.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, get_wsgi_application())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_the_schema_is_openapi_3_with_the_pixian_and_baidu_operations(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert {
        "/api/v2/remove-background",
        "/api/v2/account",
        "/v1.0/removebg",
        "/v1.0/account",
        "/v1.0/improve",
        "/oauth/2.0/token",
        "/rest/2.0/image-process/v1/segment",
    } <= set(document["paths"])
    post = document["paths"]["/api/v2/remove-background"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    }
    ok = post["responses"]["200"]
    assert set(ok["content"]) == {"image/png", "image/jpeg"}
    assert ok["content"]["image/png"]["schema"] == {"type": "string", "format": "binary"}
    assert {"X-Credits-Charged", "X-Input-Size", "X-Result-Foreground"} <= set(ok["headers"])
    too_many = post["responses"]["429"]
    assert too_many["headers"]["Retry-After"]["required"] is True
    error = too_many["content"]["application/json"]["schema"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["status", "code", "message"]
    assert document["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
        "description": "User name: the API id; password: the API secret.",
    }


def test_the_schema_needs_no_credentials_and_ignores_bad_ones(client):
    response = client.get("/api/schema/", HTTP_AUTHORIZATION="Basic bm9wZTpub3Bl")
    assert response.status_code == 200


def test_the_docs_page_loads_its_assets_from_the_project_not_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page[:500]
    for source in sources:
        assert not source.startswith(("http:", "https:", "//")), source
    assets = [s for s in sources if s.startswith("/static/")]
    assert any("swagger-ui-bundle.js" in s for s in assets)
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/").split("?")[0]), asset


@pytest.fixture
def in_test_transaction():
    """Schemathesis calls the WSGI app directly, which fires Django's request signals: their
    close_old_connections would close the test's connection (and its transaction) on
    PostgreSQL. Django's own test client unhooks it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_image_host(image_host, settings):
    """Every fuzzed image.url goes to this local host, which serves a real photo."""
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    settings.CUTOUT_URL_TIMEOUT_S = 2.0
    image_host.files["/example.jpeg"] = (photo(), "image/jpeg")
    return image_host


def localised(case, host) -> None:
    """Fuzzed image.url values go to the local host; valid Idempotency-Keys are made unique,
    since examples repeat keys and a replay would answer an earlier example's request."""
    body = case.body if isinstance(case.body, dict) else None
    for field in ("image.url", "image_url", "bg_image_url"):
        if body is not None and isinstance(body.get(field), str):
            body[field] = host.url("/example.jpeg")
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and re.fullmatch(r"[ -~]*[!-~][ -~]*", key) and len(key) < 200:
        case.headers["Idempotency-Key"] = f"{key}-{uuid.uuid4().hex}"


@schema.parametrize()
@hypothesis_settings(
    max_examples=10,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_the_promises_of_its_schema(
    case, alice_key, fuzz_image_host, in_test_transaction
):
    localised(case, fuzz_image_host)
    case.call_and_validate(headers={"Authorization": basic(*alice_key)}, checks=CHECKS)


def test_the_schema_describes_the_removebg_operations(client):
    document = yaml.safe_load(client.get("/api/schema/").content)
    assert {"/v1.0/removebg", "/v1.0/account", "/v1.0/improve"} <= set(document["paths"])
    post = document["paths"]["/v1.0/removebg"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/json",
    }
    assert {"image/png", "image/jpeg", "image/webp", "application/zip", "application/json"} == set(
        post["responses"]["200"]["content"]
    )
    for status, answer in post["responses"].items():
        if status.startswith(("4", "5")):
            (example,) = answer["content"]["application/json"]["examples"].values()
            assert set(example["value"]["errors"][0]) == {"title", "code", "detail"}
    forbidden = post["responses"]["403"]["content"]["application/json"]["examples"]
    assert next(iter(forbidden.values()))["value"]["errors"][0]["code"] == "auth_failed"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_docs_page_renders_offline_from_the_projects_own_files(live_server, page):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock").first.wait_for(timeout=30_000)
    # Pixian 2, remove.bg 3, Baidu's token 2 (GET, POST) and segment 1.
    assert page.locator(".opblock").count() == 8
    assert page.get_by_text("/api/v2/remove-background", exact=True).count() == 1
    outside = [url for url in requested if not url.startswith((live_server.url, "data:"))]
    assert outside == []


def test_the_baidu_operations_are_described_as_they_answer(client):
    document = yaml.safe_load(client.get("/api/schema/").content)
    token = document["paths"]["/oauth/2.0/token"]
    assert set(token) == {"get", "post"}
    assert set(token["post"]["responses"]) == {"200", "400", "401", "405", "429"}
    assert (
        "brain_all_scope"
        in token["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"][
            "scope"
        ]["description"]
    )
    segment = document["paths"]["/rest/2.0/image-process/v1/segment"]["post"]
    assert set(segment["responses"]) == {"200"}
    assert set(segment["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert segment["security"] == [{"baiduAccessToken": []}]
    assert document["components"]["securitySchemes"]["baiduAccessToken"]["in"] == "query"
