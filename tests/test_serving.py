"""Production serving: gunicorn's configuration, a real gunicorn that warms its engine before
it takes traffic, `check --deploy` passing with a production environment, and the whole
set-up (`manage.py serve`: nginx in front of gunicorn) under slow clients, runaway work, free
work floods and long waits, each against a real server with small limits."""

import http.client
import json
import os
import re
import runpy
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support_api import PIXIAN_PATH, basic, photo
from tests.support_gunicorn import (
    REPO,
    Gunicorn,
    get,
    gunicorn,
    nginx_site,
    prepare_site,
    server_env,
)

SMALL_LIMITS = {
    "CUTOUT_CLIENT_TIMEOUT_S": "5",
    "CUTOUT_WEB_THREADS": "4",
    "CUTOUT_ENGINE_PROCESSES": "1",
    "CUTOUT_INFERENCE_THREADS": "1",
    "DJANGO_DEBUG": "0",
    "DJANGO_EMAIL_BACKEND": None,
    "PYTHONUNBUFFERED": "1",
}


def gunicorn_config(**env: str) -> dict:
    saved = dict(os.environ)
    try:
        for name in ("WEB_CONCURRENCY", "CUTOUT_INFERENCE_THREADS", "CUTOUT_ENGINE_PROCESSES"):
            os.environ.pop(name, None)
        os.environ.update(env)
        return runpy.run_path(str(REPO / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def test_gunicorn_defaults_to_one_threaded_worker_and_an_engine_process_per_core():
    config = gunicorn_config()
    assert config["workers"] == 1
    assert config["worker_class"] == "gthread" and config["threads"] >= 32
    assert config["graceful_timeout"] >= 200
    assert "preload_app" not in config
    assert config["_engine_processes"] == cores()


def test_each_engine_process_may_use_every_core_unless_told_otherwise():
    assert gunicorn_config()["_threads"] == cores()
    config = gunicorn_config(CUTOUT_INFERENCE_THREADS="1", CUTOUT_ENGINE_PROCESSES="3")
    assert (config["_threads"], config["_engine_processes"]) == (1, 3)
    assert gunicorn_config(WEB_CONCURRENCY="3")["workers"] == 3


def test_the_access_log_format_has_the_path_without_its_query_and_no_user():
    log_format = gunicorn_config()["access_log_format"]
    assert "%(U)s" in log_format and "pid=%(p)s" in log_format
    assert not {"%(r)s", "%(q)s", "%(u)s", "%(f)s"} & set(re.findall(r"%\(\w+\)s", log_format))


def test_gunicorn_warms_the_engine_in_each_worker_before_serving(tmp_path):
    with gunicorn(tmp_path, WEB_CONCURRENCY="2", CUTOUT_ENGINE_PROCESSES="1") as server:
        assert get(f"{server.url}/healthz") == (200, b'{"status": "ok"}')
    text = server.log()
    booted = re.findall(r"Booting worker with pid: (\d+)", text)
    warmed = re.findall(r"worker (\d+): engine loaded and warm", text)
    assert len(booted) == 2 and sorted(booted) == sorted(warmed)
    # Each worker is warm before it answers: its warm-up line precedes every access line it
    # wrote. (Another worker may answer while this one is still warming.)
    for pid in warmed:
        warm_at = text.index(f"worker {pid}: engine loaded")
        served_at = [m.start() for m in re.finditer(rf'"GET /[^\n]* pid=<{pid}>', text)]
        assert all(warm_at < at for at in served_at)
    assert re.search(r'"GET /healthz[^\n]* pid=<\d+>', text)


def test_check_deploy_passes_with_a_production_environment():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "cutout.example.com",
        "CUTOUT_HTTPS": "1",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    }
    # Set by the browser tests' plugin in this process; never in a deployment.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the production set-up under attack (`manage.py serve`: nginx → gunicorn → engines) ------


def multipart(fields: dict[str, str], image: bytes | None = None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if image is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="photo.jpeg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            + image
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def call(
    site: Gunicorn,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(site.host, site.port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def remove(
    site: Gunicorn, image: bytes | None = None, headers: dict[str, str] | None = None, **fields
) -> tuple[int, dict[str, str], bytes]:
    body, content_type = multipart({k.replace("_", "."): v for k, v in fields.items()}, image)
    auth = {"Authorization": basic(*site.key), "Content-Type": content_type}
    return call(site, "POST", PIXIAN_PATH, body, {**auth, **(headers or {})})


def error_code(body: bytes) -> int:
    return json.loads(body)["error"]["code"]


def credits(site: Gunicorn) -> float:
    status, _, body = call(site, "GET", "/api/v2/account", b"", {"Authorization": basic(*site.key)})
    assert status == 200, body
    return json.loads(body)["credits"]


@contextmanager
def site_with(data_dir: Path, credits_granted: int = 0, **env: str | None) -> Iterator[Gunicorn]:
    settings = {**SMALL_LIMITS, **env}
    key = prepare_site(data_dir, credits=credits_granted, **settings)
    with nginx_site(data_dir, **settings) as site:
        site.key = key
        yield site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Gunicorn]:
    """One production set-up for this module's tests, with small limits: 40 gunicorn threads,
    one engine process, one free call at a time site-wide, two failed authentications per
    address a minute, and loopback image URLs (for a stalling image host)."""
    env = {
        "CUTOUT_WEB_THREADS": "40",
        "CUTOUT_CONCURRENCY_LIMIT": "40",
        "CUTOUT_FREE_CONCURRENCY": "1",
        "CUTOUT_API_AUTH_FAILURE_LIMIT": "2",
        "CUTOUT_ALLOW_LOOPBACK_URLS": "1",
    }
    with site_with(tmp_path_factory.mktemp("site"), credits_granted=100, **env) as site:
        yield site


def wait_for(condition, what: str, wait_s: float = 30) -> None:
    deadline = time.monotonic() + wait_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def slow_connections(site: Gunicorn, headers: int, bodies: int) -> Iterator[list[socket.socket]]:
    """Slowloris: `headers` connections sending one header byte a second, `bodies` sending a
    declared 1 MB body one byte a second; closed on exit."""
    stop = threading.Event()
    socks = []
    for index in range(headers + bodies):
        sock = socket.create_connection((site.host, site.port), timeout=30)
        if index < headers:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:
            sock.sendall(
                f"POST {PIXIAN_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode()
            )
        socks.append(sock)

    def trickle() -> None:
        while not stop.wait(1):
            for sock in socks:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield socks
    finally:
        stop.set()
        thread.join()
        for sock in socks:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_slow_clients_do_not_hold_the_server_and_are_cut_off(site):
    # More slow connections than gunicorn has threads: they would hold every one of them if
    # they reached it.
    with slow_connections(site, headers=40, bodies=4) as socks:
        assert get(f"{site.url}/healthz") == (200, b'{"status": "ok"}')
        status, headers, body = remove(site, photo(), test="true")
        assert status == 200, body
        assert headers["X-Credits-Charged"] == "0"
        # nginx cuts each slowloris off after CUTOUT_CLIENT_TIMEOUT_S of headers.
        assert all(closed_by_server(sock) for sock in socks[:40])
    assert "X-Slow" not in site.log()


def test_errors_of_the_proxy_answer_in_the_api_format(site):
    # Headers larger than nginx's buffers: 400 in Pixian's JSON, not an HTML page.
    status, headers, body = call(site, "GET", "/api/v2/account", b"", {"X-Big": "x" * 40000})
    assert status == 400 and headers["Content-Type"] == "application/json", body
    assert error_code(body) == 1010
    # A declared body over the upload cap: refused before it is read.
    conn = http.client.HTTPConnection(site.host, site.port, timeout=30)
    conn.putrequest("POST", PIXIAN_PATH)
    conn.putheader("Content-Length", str(200 * 1024 * 1024))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and error_code(response.read()) == 1004
    conn.close()
    # The pages keep plain text.
    status, headers, _ = call(site, "GET", "/account/", b"", {"X-Big": "x" * 40000})
    assert status == 400 and headers["Content-Type"].startswith("text/plain")


def test_secrets_never_reach_the_access_logs(site):
    secret_query = "access_token=tok-" + "s" * 20 + "&client_secret=cs-" + "t" * 20
    path = f"/api/v2/account?{secret_query}"
    assert call(site, "GET", path, b"", {"Authorization": basic(*site.key)})[0] == 200
    text = site.log_once_it_shows('"GET /api/v2/account HTTP/1.1" 200')
    assert '"GET /api/v2/account HTTP/1.1" 200' in text
    assert "tok-" not in text and "cs-" not in text and site.key[1] not in text
    assert basic(*site.key).split()[1] not in text and site.key[0] not in text


def test_free_work_past_the_site_cap_is_refused_while_paid_work_goes_ahead(site, image_host):
    before = credits(site)
    answers: dict[str, tuple] = {}
    # A free call holds the site's one free slot while its image.url never answers.
    stalled = threading.Thread(
        target=lambda: answers.update(
            stalled=remove(site, test="true", image_url=image_host.url("/never"))
        )
    )
    stalled.start()
    wait_for(lambda: "/never" in image_host.hits, "the free call's fetch")
    status, headers, body = remove(site, photo(), test="true")
    assert status == 429 and error_code(body) == 4291 and int(headers["Retry-After"]) >= 1
    status, headers, body = remove(site, photo())
    assert status == 200 and headers["X-Credits-Charged"] == "1", body
    # Answered while the free call still holds its slot: paid work never waits for it.
    assert "stalled" not in answers
    image_host.stop.set()
    stalled.join(60)
    assert answers["stalled"][0] == 400  # its download failed, and it charged nothing
    assert credits(site) == before - 1


def test_long_waits_hold_threads_not_the_site(site, image_host):
    # 32 calls waiting on a stalled host, as reseller mode waits on the upstream.
    waiting = [
        threading.Thread(
            target=remove, args=(site,), kwargs={"image_url": image_host.url(f"/never?{n}")}
        )
        for n in range(32)
    ]
    for thread in waiting:
        thread.start()
    wait_for(lambda: len(image_host.hits) == 32, "32 calls in flight")
    assert get(f"{site.url}/healthz")[0] == 200
    status, _, body = remove(site, photo())
    assert status == 200, body
    assert all(thread.is_alive() for thread in waiting)
    image_host.stop.set()
    for thread in waiting:
        thread.join(60)


def test_a_forged_forwarded_header_does_not_shed_an_address_limit(site):
    # Last of the tests on `site`: it leaves 127.0.0.1 over its failed-authentication limit.
    # Our nginx is the one trusted hop: what the client adds to X-Forwarded-For is not read.
    statuses = []
    for index in range(3):
        forged = {"X-Forwarded-For": f"203.0.113.{index}", "Authorization": "Basic eDp5"}
        statuses.append(call(site, "GET", "/api/v2/account", b"", forged)[0])
    assert statuses == [401, 401, 429]


def test_work_past_the_engine_time_out_answers_json_and_releases_everything(tmp_path):
    big = photo("astronaut", (2000, 2000))  # 4 MP: well past 10 ms of decoding and inference
    env = {"CUTOUT_ENGINE_TIMEOUT_S": "0.01", "CUTOUT_CONCURRENCY_LIMIT": "1"}
    with site_with(tmp_path, credits_granted=10, **env) as site:
        key = {"Idempotency-Key": "runaway-1"}
        status, headers, body = remove(site, big, headers=key)
        assert status == 504 and headers["Content-Type"] == "application/json"
        assert error_code(body) == 5041
        assert credits(site) == 10  # the hold is released
        # The key's claim and the one concurrency slot are free again: the same call runs
        # (and is stopped) again rather than answering 409 or 429.
        status, _, body = remove(site, big, headers=key)
        assert status == 504 and error_code(body) == 5041
        assert "its process is killed" in site.log()
    done = subprocess.run(
        [sys.executable, "manage.py", "check_ledger"],
        cwd=REPO,
        env=server_env(tmp_path, **SMALL_LIMITS),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
