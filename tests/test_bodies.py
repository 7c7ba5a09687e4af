"""Request bodies at the edge (webapp/bodies.py): the upload cap from the headers before any
code reads a byte, on the website (the API checks the same rule after authentication), and
chunked bodies read whole (gunicorn
de-chunks them) or refused with 411 (servers that do not)."""

import io
import json
import sys

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from PIL import Image

from tests.conftest import PASSWORD
from tests.support_api import PIXIAN_PATH, basic, photo
from tests.support_gunicorn import connect, cookies_of, post_form

SIXTY_MB = 60 * 1024 * 1024
UPLOAD = "/remove/uploads/"


class CountingInput(io.RawIOBase):
    """A request body of `size` bytes (endless by default) that counts what was read of it."""

    def __init__(self, size: int | None = None):
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = len(buffer) if self.size is None else min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"-" * n
        self.read_bytes += n
        return n


def multipart(fields: dict[str, str], image: bytes, boundary: str = "cutout-boundary") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="cat.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# --- In the process: what the middleware and the WSGI wrapper do ----------------------------


def test_the_websites_upload_call_answers_413_before_reading_a_byte(alice):
    # Before the middleware, DRF's CSRF check for the session parsed the whole body
    # (request.POST, looking for csrfmiddlewaretoken) before the view's size check ran.
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/remove/")
    body = CountingInput(SIXTY_MB)
    response = client.generic(
        "POST",
        UPLOAD,
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        **{
            "CONTENT_TYPE": "multipart/form-data; boundary=b",
            "CONTENT_LENGTH": str(SIXTY_MB),
            "wsgi.input": body,
        },
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 1004
    assert body.read_bytes == 0


@pytest.mark.parametrize("path", [UPLOAD, PIXIAN_PATH, "/accounts/login/"])
def test_a_chunked_body_the_server_did_not_dechunk_is_411_in_the_apis_format(alice_key, path):
    # The API answers its own way, after authentication (Pixian's order); the website's paths
    # are answered by the middleware.
    client = Client(HTTP_AUTHORIZATION=basic(*alice_key))
    response = client.generic("POST", path, b"", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert response.json()["error"] == {
        "status": 411,
        "code": 4110,
        "message": "Send the body with a Content-Length header: this server cannot read it "
        "chunked.",
    }


def test_a_dechunked_body_is_read_no_further_than_the_cap_plus_one_byte(settings):
    from webapp.wsgi import application

    settings.CUTOUT_MAX_UPLOAD_MB = 1
    endless = CountingInput()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": UPLOAD,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "multipart/form-data; boundary=b",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.url_scheme": "http",
        "wsgi.input": endless,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
    }
    started = []
    # As Django's test client does: the test's database connection must stay open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, lambda status, headers, exc=None: started.append(status))
        body = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert started == ["413 Request Entity Too Large"]
    assert json.loads(body)["error"]["code"] == 1004
    assert endless.read_bytes == 1024 * 1024 + 1


# --- Against a real gunicorn (debug off, no mail configured) -------------------------------


def test_a_chunked_upload_is_read_whole_by_the_api(served):
    image = photo()
    body = multipart({"test": "true"}, image)
    conn = connect(served)
    # No Content-Length: http.client sends an iterable body chunked.
    conn.request(
        "POST",
        PIXIAN_PATH,
        body=(body[i : i + 4096] for i in range(0, len(body), 4096)),
        headers={
            "Authorization": basic(*served.key),
            "Content-Type": "multipart/form-data; boundary=cutout-boundary",
        },
    )
    response = conn.getresponse()
    result = response.read()
    conn.close()
    assert response.status == 200, result[:300]
    assert response.getheader("X-Input-Size") == "240 160"
    assert Image.open(io.BytesIO(result)).size == (240, 160)


def test_the_website_refuses_60_mb_from_the_header_over_a_real_socket(served):
    logged_in = post_form(
        served, "/accounts/login/", {"username": "carol@example.com", "password": PASSWORD}
    )
    assert logged_in.status == 302
    cookies = cookies_of(logged_in)
    conn = connect(served)
    conn.putrequest("POST", UPLOAD)
    conn.putheader("Content-Type", "multipart/form-data; boundary=b")
    conn.putheader("Content-Length", str(SIXTY_MB))
    conn.putheader("Cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()))
    conn.putheader("X-CSRFToken", cookies["csrftoken"])
    conn.endheaders()
    # Not a byte of the body is sent: a server that read it would wait until the time-out.
    response = conn.getresponse()
    error = json.loads(response.read())["error"]
    conn.close()
    assert (response.status, error["code"]) == (413, 1004)
    assert "62,914,560 bytes" in error["message"]
