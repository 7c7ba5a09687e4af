"""Baidu's clients against a live server: the vendor's curl and Python samples
(../shared/seeds/004_8cb7c3235f45769a.txt) with only the substitutions spec/baidu-segment.md
allows, Baidu's own SDK (`baidu-aip`) with its token URL pointed here, raw HTTP for the token
flow, and a real gunicorn whose log must never show a secret or a token."""

import base64
import http.client
import io
import json
import logging
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aip import AipImageProcess
from aip.base import AipBase
from django.conf import settings as django_settings
from django.utils import timezone
from PIL import Image

from billing.models import LedgerEntry
from removal.models import AccessToken
from tests.support_api import photo
from tests.support_gunicorn import connect
from webapp.logs import ScrubSecrets

VENDOR_DOC = "seeds/004_8cb7c3235f45769a.txt"
HOST = "https://aip.baidubce.com"
SEGMENT_PATH = "/rest/2.0/image-process/v1/segment"
TOKEN_PATH = "/oauth/2.0/token"

# Verbatim from the vendor document.
CURL_SAMPLE = (
    "curl -i -k 'https://aip.baidubce.com/rest/2.0/image-process/v1/segment?access_token="
    '【调用鉴权接口获取的token】\' --data \'{"image":"图片base64编码", "method": "auto", '
    '"refine_mask":"true", "return_form":"rgba"}\' -H \'Content-Type:application/json; '
    "charset=UTF-8'"
)
PYTHON_SAMPLE = """# encoding:utf-8
import requests
'''
智能抠图
'''
request_url = "https://aip.baidubce.com/rest/2.0/image-process/v1/segment"
params = "{"image":"图片base64编码", "method": "auto", "refine_mask":"true", "return_form":"rgba"}"
access_token = '[调用鉴权接口获取的token]'
request_url = request_url + "?access_token=" + access_token
headers = {'content-type': 'application/json'}
response = requests.post(request_url, data=params, headers=headers)
if response:
print (response.json())"""
# The repair the spec allows: the sample's string literal is not valid Python. The document
# also lost the indentation of the `if`'s body (every line of it starts at column 0), which is
# put back the same way: neither changes what the sample sends.
BROKEN_QUOTING = (
    'params = "{"image":"图片base64编码", "method": "auto", "refine_mask":"true", '
    '"return_form":"rgba"}"'
)
REPAIRED_QUOTING = "params = '" + BROKEN_QUOTING.removeprefix('params = "')[:-1] + "'"


def repaired(script: str) -> str:
    b64 = base64.b64encode(PHOTO).decode()
    script = script.replace(
        BROKEN_QUOTING.replace("图片base64编码", b64),
        REPAIRED_QUOTING.replace("图片base64编码", b64),
    )
    return script.replace("if response:\nprint", "if response:\n    print")


PHOTO = photo("chelsea", None)  # 451 x 300


def substituted(sample: str, server: str, token: str, token_placeholder: str) -> str:
    """Host, token and the photo's base64; each placeholder must occur."""
    for placeholder in (HOST, token_placeholder, "图片base64编码"):
        assert placeholder in sample
    return (
        sample.replace(HOST, server)
        .replace(token_placeholder, token)
        .replace("图片base64编码", base64.b64encode(PHOTO).decode())
    )


def charges(user) -> list[Decimal]:
    return [e.amount for e in LedgerEntry.objects.filter(account__user=user, kind="charge")]


def raw_request(server_url: str, method: str, path: str, body: bytes = b"", **headers: str):
    """One request over a plain socket; returns (status, parsed JSON body)."""
    host, port = server_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def fetch_token(server_url: str, key: tuple[str, str], method: str = "GET") -> str:
    query = urlencode(
        {"grant_type": "client_credentials", "client_id": key[0], "client_secret": key[1]}
    )
    status, body = raw_request(server_url, method, f"{TOKEN_PATH}?{query}")
    assert status == 200, body
    assert "brain_all_scope" in body["scope"].split()
    return body["access_token"]


def decoded(body: dict) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    image.load()
    return image


def test_samples_are_verbatim_from_the_vendor_document():
    doc = Path(django_settings.SHARED_DIR) / VENDOR_DOC
    if not doc.exists():
        pytest.skip(f"vendor document not found under CUTOUT_SHARED_DIR ({doc})")
    text = doc.read_text()
    assert CURL_SAMPLE in text
    assert PYTHON_SAMPLE in text
    assert BROKEN_QUOTING in PYTHON_SAMPLE


def test_the_curl_sample_gets_a_cutout(live_server, alice, alice_key):
    token = fetch_token(live_server.url, alice_key)
    script = substituted(CURL_SAMPLE, live_server.url, token, "【调用鉴权接口获取的token】")
    done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    answer = json.loads(body)
    image = decoded(answer)
    assert image.mode == "RGBA" and image.size == (451, 300)
    assert isinstance(answer["log_id"], int) and answer["log_id"] < 2**53
    assert charges(alice) == [Decimal(-1)]


def test_the_python_sample_with_its_quoting_repaired_gets_a_cutout(
    live_server, alice, alice_key, capsys
):
    token = fetch_token(live_server.url, alice_key, method="POST")
    script = repaired(
        substituted(PYTHON_SAMPLE, live_server.url, token, "[调用鉴权接口获取的token]")
    )
    namespace: dict = {}
    exec(compile(script, "baidu_sample.py", "exec"), namespace)
    response = namespace["response"]
    assert response.status_code == 200
    assert decoded(response.json()).size == (451, 300)
    assert "'log_id'" in capsys.readouterr().out
    assert charges(alice) == [Decimal(-1)]


def test_the_python_sample_prints_baidus_error_for_an_unknown_token(live_server, alice, capsys):
    script = repaired(
        substituted(PYTHON_SAMPLE, live_server.url, "24.nope", "[调用鉴权接口获取的token]")
    )
    namespace: dict = {}
    exec(compile(script, "baidu_sample.py", "exec"), namespace)
    assert namespace["response"].json()["error_code"] == 110
    assert "'error_code': 110" in capsys.readouterr().out
    assert charges(alice) == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_token_flow_over_raw_http_json_and_form(live_server, alice, alice_key, method):
    token = fetch_token(live_server.url, alice_key, method=method)
    b64 = base64.b64encode(PHOTO).decode()
    if method == "GET":
        body = json.dumps({"image": b64, "return_form": "mask"}).encode()
        headers = {}
    else:
        body = urlencode({"image": b64, "return_form": "mask"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    path = f"{SEGMENT_PATH}?access_token={token}"
    status, answer = raw_request(live_server.url, "POST", path, body, **headers)
    assert status == 200 and decoded(answer).mode == "L"
    status, answer = raw_request(live_server.url, "POST", path)
    assert status == 200 and answer["error_code"] == 216101
    assert charges(alice) == [Decimal(-1)]


@pytest.fixture
def sdk(live_server, alice_key, monkeypatch) -> Iterator[AipImageProcess]:
    """Baidu's SDK with its token URL (a class attribute) pointed at the live server."""
    monkeypatch.setattr(AipBase, "_AipBase__accessTokenUrl", f"{live_server.url}{TOKEN_PATH}")
    client = AipImageProcess("cutout-app", *alice_key)
    yield client
    # Its keep-alive connection would otherwise outlive the live server's database.
    client.s.close()


def test_the_sdk_segments_through_its_generic_request(live_server, alice, sdk):
    boxes = [[[60, 10], [440, 295]]]
    answer = sdk.post(
        f"{live_server.url}{SEGMENT_PATH}",
        {
            "image": base64.b64encode(PHOTO).decode(),
            "method": "control",
            "position": json.dumps(boxes),
            "return_form": "mask",
        },
    )
    assert set(answer) == {"log_id", "image"}, answer.get("error_msg")
    assert decoded(answer).size == (451, 300)
    assert charges(alice) == [Decimal(-1)]


def test_the_sdk_fetches_a_new_token_when_its_own_expired(live_server, alice, sdk):
    # No image: 216101 shows the token was accepted (else 110 or 111), without the work.
    url = f"{live_server.url}{SEGMENT_PATH}"
    assert sdk.post(url, {"method": "auto"})["error_code"] == 216101
    first = sdk._authObj["access_token"]
    # Expired on the server, and by the SDK's clock: it asks for a new one before calling.
    AccessToken.objects.update(expires_at=timezone.now())
    sdk._authObj["time"] -= 2592000
    assert sdk.post(url, {"method": "auto"})["error_code"] == 216101
    second = sdk._authObj["access_token"]
    # Gone on the server only (its key's 100-token cap, say): the SDK retries after a 110.
    AccessToken.objects.all().delete()
    assert sdk.post(url, {"method": "auto"})["error_code"] == 216101
    assert len({first, second, sdk._authObj["access_token"]}) == 3
    assert AccessToken.objects.count() == 1
    assert charges(alice) == []


def test_the_sdk_gets_baidus_errors(live_server, alice, sdk):
    answer = sdk.post(f"{live_server.url}{SEGMENT_PATH}", {"method": "auto"})
    assert answer["error_code"] == 216101
    assert answer["log_id"] < 2**53
    answer = sdk.post(
        f"{live_server.url}{SEGMENT_PATH}",
        {"image": base64.b64encode(PHOTO).decode(), "return_form": "jpeg"},
    )
    assert answer["error_code"] == 216100
    assert charges(alice) == []


def test_the_sdk_with_a_wrong_secret_gets_no_token_and_no_cutout(live_server, alice, alice_key):
    AipBase._AipBase__accessTokenUrl, saved = (
        f"{live_server.url}{TOKEN_PATH}",
        (AipBase._AipBase__accessTokenUrl),
    )
    try:
        client = AipImageProcess("cutout-app", alice_key[0], "wrong")
        answer = client.post(
            f"{live_server.url}{SEGMENT_PATH}", {"image": base64.b64encode(PHOTO).decode()}
        )
    finally:
        AipBase._AipBase__accessTokenUrl = saved
    assert answer["error_code"] == 100
    assert charges(alice) == []


# --- no secret in a log ---------------------------------------------------------------------------


def test_gunicorns_and_djangos_logs_never_show_a_secret_or_a_token(served):
    key_id, secret = served.key
    token = fetch_token(served.url, served.key)
    wrong = urlencode(
        {"grant_type": "client_credentials", "client_id": key_id, "client_secret": secret + "x"}
    )
    status, _ = raw_request(served.url, "POST", f"{TOKEN_PATH}?{wrong}")
    assert status == 401
    b64 = base64.b64encode(PHOTO).decode()
    status, answer = raw_request(
        served.url,
        "POST",
        f"{SEGMENT_PATH}?access_token={token}&aipSdk=python",
        json.dumps({"image": b64}).encode(),
        Referer=f"http://example.com/?access_token={token}",
    )
    assert status == 200 and answer["error_code"] == 19  # the served account has no credits
    conn = connect(served)
    conn.request("GET", f"/rest/2.0/nothing?access_token={token}&client_secret={secret}")
    assert conn.getresponse().status == 200
    conn.close()
    # The access log writes paths without their query strings; Django's own lines are scrubbed.
    log = served.log_once_it_shows('"GET /rest/2.0/nothing ')
    assert '"GET /oauth/2.0/token ' in log
    assert f'"POST {SEGMENT_PATH} ' in log
    assert f"log_id={answer['log_id']} " in log
    assert secret not in log
    assert token not in log
    assert token.removeprefix("24.")[:16] not in log


def test_the_filter_scrubs_messages_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubSecrets())
    logger = logging.getLogger("tests.scrub")
    logger.addHandler(handler)
    try:
        logger.warning("GET %s", "/x?client_secret=s3cret&access_token=t0ken&a=1")
        try:
            raise ValueError("fetching /y?access_token=t0ken failed")
        except ValueError:
            logger.exception("request /z?refresh_token=r3fresh")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "s3cret" not in text and "t0ken" not in text and "r3fresh" not in text
    assert "/x?client_secret=[scrubbed]&access_token=[scrubbed]&a=1" in text
    assert "ValueError: fetching /y?access_token=[scrubbed] failed" in text
