"""A real HTTP server on 127.0.0.1:0 that stands in for the web hosts `image.url` points at.

Routes cover the good case and every hostile one of the SSRF suite. Handlers that "never end"
stop when the fixture tears down (or after `FOREVER_S`), so no loop is unbounded.
"""

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

FOREVER_S = 30.0


def png_bytes(size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 255)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class ImageHost:
    """The running server: its base URL, the paths it was asked for, and a stop switch."""

    base: str
    port: int
    stop: threading.Event
    hits: list[str] = field(default_factory=list)
    png: bytes = b""
    # Extra routes a test adds: path -> (body, content type).
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _handler(host: ImageHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _stream_forever(self, chunk: bytes, pause_s: float) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(f"{len(host.png):x}\r\n".encode() + host.png + b"\r\n")
            deadline = time.monotonic() + FOREVER_S
            try:
                while not host.stop.is_set() and time.monotonic() < deadline:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                    if pause_s:
                        host.stop.wait(pause_s)
            except OSError:
                pass  # the client hung up, as it should

        def do_GET(self) -> None:
            host.hits.append(self.path)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            path = parts.path
            if path in host.files:
                self._send(200, *host.files[path])
            elif path == "/image.png":
                self._send(200, host.png, "image/png")
            elif path == "/page.html":
                self._send(200, b"<!doctype html><title>Not an image</title>", "text/html")
            elif path == "/mislabelled.png":
                self._send(200, b"<html>an error page</html>", "image/png")
            elif path == "/drawing.svg":
                self._send(200, b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")
            elif path == "/empty":
                self._send(200, b"", "image/png")
            elif path == "/missing":
                self._send(404, b"not found", "text/plain")
            elif path == "/redirect":
                self._send(int(query.get("status", 302)), b"", "text/plain", Location=query["to"])
            elif path.startswith("/chain/"):
                # /chain/N answers with the N-th of N redirects ending at /image.png.
                left = int(path.rsplit("/", 1)[1])
                target = "/image.png" if left <= 1 else f"/chain/{left - 1}"
                self._send(302, b"", "text/plain", Location=target)
            elif path == "/declared-huge":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.wfile.write(host.png)
            elif path == "/never":
                host.stop.wait(FOREVER_S)
                # Released: hang up at once rather than wait for another request.
                self.close_connection = True
            elif path == "/trickle":
                self._stream_forever(b"\x00", 0.05)
            elif path == "/flood":
                self._stream_forever(b"\x00" * 65536, 0)
            else:
                self._send(404, b"no such route", "text/plain")

    return Handler


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    server.daemon_threads = True
    port = server.server_address[1]
    host = ImageHost(f"http://127.0.0.1:{port}", port, threading.Event(), png=png_bytes())
    server.RequestHandlerClass = _handler(host)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield host
    host.stop.set()
    server.shutdown()
    server.server_close()
