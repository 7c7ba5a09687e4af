"""Request bodies at the edge (webapp/bodies.py): the upload cap from the headers before any
code reads a byte, on the website as on the API, and chunked bodies read whole (gunicorn
de-chunks them) or refused with 411 (servers that do not)."""

import http.client
import io
import json
import subprocess
import sys
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from PIL import Image

from tests.conftest import PASSWORD
from tests.support_api import PIXIAN_PATH, basic, photo
from tests.support_gunicorn import REPO, gunicorn, server_env

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
def test_a_chunked_body_the_server_did_not_dechunk_is_411_in_the_apis_format(client, db, path):
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
        "PATH_INFO": PIXIAN_PATH,
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


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn on a migrated SQLite database with one account and its API key."""
    data_dir = tmp_path_factory.mktemp("served")
    env = server_env(data_dir, DJANGO_DEBUG="0", PYTHONUNBUFFERED="1", WEB_CONCURRENCY="1")
    env.pop("DJANGO_EMAIL_BACKEND", None)
    setup = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from removal import keys\n"
        "from webapp.models import User\n"
        f"user = User.objects.create_user('carol@example.com', {PASSWORD!r})\n"
        "key, secret = keys.create_key(user, 'test')\n"
        "print(key.key_id, secret)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", setup],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "webapp.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    key_id, secret = done.stdout.split()[-2:]
    with gunicorn(data_dir, **{k: env[k] for k in ("DJANGO_DEBUG", "PYTHONUNBUFFERED")}) as server:
        server.key = (key_id, secret)
        yield server


def connect(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=60)


def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def post_form(server, path: str, fields: dict[str, str], cookies: dict[str, str] | None = None):
    """A form post with a CSRF token (the double-submit pair a browser would carry)."""
    csrf = (cookies or {}).get("csrftoken", "k" * 32)
    jar = {"csrftoken": csrf, **(cookies or {})}
    conn = connect(server)
    conn.request(
        "POST",
        path,
        body=urlencode({**fields, "csrfmiddlewaretoken": csrf}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{name}={value}" for name, value in jar.items()),
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


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
    assert "Transfer-Encoding: chunked" not in served.log()  # the access log shows no header
    assert f'"POST {PIXIAN_PATH} HTTP/1.1" 200' in served.log()


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
