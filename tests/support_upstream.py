"""A stand-in Pixian API on 127.0.0.1:0 that misbehaves on demand (the upstream of reseller mode).

It checks HTTP Basic credentials first (a wrong pair gets Pixian's `401` error JSON), then
answers each `POST /api/v2/remove-background` with the next scripted `Reply` (a success once
the script is empty), and `GET /api/v2/account` with `FakePixian.account`. Every request is
recorded with its arrival time, form fields, files and client port, so tests can count tries,
measure the waits between them and see connections being reused.

Use the `fake_pixian` fixture; `fake_pixian.client(...)` builds an `UpstreamClient` for it with
waits scaled down to milliseconds.
"""

import base64
import email
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from removal.upstream import UpstreamClient
from tests.support_http import png_bytes

API_ID = "pxxbbzb96n2w8am"
API_SECRET = "upstream-secret-0123456789abcdef"


@dataclass
class Reply:
    """One scripted answer. `action`: `respond`; `reset` (TCP reset before any byte);
    `stall` (wait `stall_s`, then respond); `stall_body` (send the headers and half the body,
    then wait); `truncate` (half the declared body, then close); `truncate_unsized` (no
    Content-Length, half the body, then close)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "respond"
    stall_s: float = 0.0


def success(
    body: bytes | None = None,
    *,
    charged: str | None = "1",
    calculated: str | None = None,
    content_type: str = "image/png",
    **headers: str,
) -> Reply:
    """Pixian's `200`: the image and its headers (override any as X_Input_Size="4 3" ...)."""
    values = {
        "Content-Type": content_type,
        "X-Input-Orientation": "6",
        "X-Input-Size": "12 16",
        "X-Result-Size": "16 12",
        "X-Input-Foreground": "1 2 10 14",
        "X-Result-Foreground": "2 1 14 10",
    }
    if charged is not None:
        values["X-Credits-Charged"] = charged
    if calculated is not None:
        values["X-Credits-Calculated"] = calculated
    values.update({name.replace("_", "-"): value for name, value in headers.items()})
    return Reply(200, png_bytes() if body is None else body, values)


def error(status: int, code: int, message: str, **headers: str) -> Reply:
    """Pixian's error JSON."""
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    values = {"Content-Type": "application/json"}
    values.update({name.replace("_", "-"): value for name, value in headers.items()})
    return Reply(status, body, values)


def text(status: int, body: str, content_type: str = "text/html") -> Reply:
    """A non-JSON answer, as a proxy in front of the upstream would give."""
    return Reply(status, body.encode(), {"Content-Type": content_type})


def reset() -> Reply:
    return Reply(action="reset")


def stall(seconds: float, then: Reply | None = None) -> Reply:
    reply = then or success()
    return Reply(reply.status, reply.body, reply.headers, "stall", seconds)


def stall_body(seconds: float) -> Reply:
    reply = success()
    return Reply(reply.status, reply.body, reply.headers, "stall_body", seconds)


def truncated(*, sized: bool = True) -> Reply:
    reply = success()
    return Reply(
        reply.status, reply.body, reply.headers, "truncate" if sized else "truncate_unsized"
    )


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    files: dict[str, tuple[str, bytes]]
    at: float
    port: int


@dataclass
class FakePixian:
    url: str
    stop: threading.Event
    api_id: str = API_ID
    api_secret: str = API_SECRET
    script: deque[Reply] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    account: dict = field(
        default_factory=lambda: {
            "creditPack": "Pixian 1,000",
            "state": "active",
            "useBefore": "2027-01-31T12:00:00Z",
            "credits": 812.5,
        }
    )

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    @property
    def tries(self) -> int:
        return len(self.seen)

    def gaps(self) -> list[float]:
        """Seconds between the arrivals of consecutive requests."""
        times = [seen.at for seen in self.seen]
        return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]

    def client(self, **overrides) -> UpstreamClient:
        """A client for this server with waits in milliseconds (override any keyword)."""
        options = {
            "deadline_s": 2.0,
            "backoff_s": 0.02,
            "error_wait_s": 0.01,
            "max_tries": 3,
            "min_try_s": 0.0,
        }
        options.update(overrides)
        api_id = options.pop("api_id", self.api_id)
        api_secret = options.pop("api_secret", self.api_secret)
        return UpstreamClient(self.url, api_id, api_secret, **options)


def _parse_form(content_type: str, body: bytes) -> tuple[dict, dict]:
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if not content_type.startswith("multipart/"):
        return fields, files
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), payload)
        else:
            fields[name] = payload.decode()
    return fields, files


def _handler(fake: FakePixian) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{fake.api_id}:{fake.api_secret}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:
            pass

        def _answer(self, reply: Reply, *, declared: int | None = None, body: bytes = b"") -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if declared is not None:
                self.send_header("Content-Length", str(declared))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def _respond(self, reply: Reply) -> None:
            self._answer(reply, declared=len(reply.body), body=reply.body)

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fields, files = _parse_form(self.headers.get("Content-Type", ""), body)
            fake.seen.append(
                Seen(
                    self.command,
                    self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    fields,
                    files,
                    time.monotonic(),
                    self.client_address[1],
                )
            )

        def _handle(self) -> None:
            self._record()
            if self.headers.get("Authorization") != expected:
                self._respond(error(401, 4002, "Unknown or revoked API id, or wrong secret."))
                return
            if self.command == "GET" and self.path == "/api/v2/account":
                body = json.dumps(fake.account).encode()
                self._respond(Reply(200, body, {"Content-Type": "application/json"}))
                return
            if self.command != "POST" or self.path != "/api/v2/remove-background":
                self._respond(error(404, 4040, "Not found."))
                return
            reply = fake.script.popleft() if fake.script else success()
            half = reply.body[: len(reply.body) // 2]
            try:
                if reply.action == "reset":
                    self.close_connection = True
                    # SO_LINGER 0: close() sends a TCP reset instead of a clean FIN.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                elif reply.action == "stall":
                    fake.stop.wait(reply.stall_s)
                    self._respond(reply)
                elif reply.action == "stall_body":
                    self._answer(reply, declared=len(reply.body), body=half)
                    fake.stop.wait(reply.stall_s)
                    self.close_connection = True
                elif reply.action == "truncate":
                    self._answer(reply, declared=len(reply.body), body=half)
                    self.close_connection = True
                elif reply.action == "truncate_unsized":
                    reply.headers["Connection"] = "close"
                    self._answer(reply, body=half)
                    self.close_connection = True
                else:
                    self._respond(reply)
            except OSError:
                self.close_connection = True  # the client gave up first, as it should

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:
                pass

    return Handler


@pytest.fixture
def fake_pixian() -> Iterator[FakePixian]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    fake = FakePixian(f"http://127.0.0.1:{server.server_address[1]}", threading.Event())
    server.RequestHandlerClass = _handler(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    fake.stop.set()
    server.shutdown()
    server.server_close()
