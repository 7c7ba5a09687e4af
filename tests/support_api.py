"""Helpers for the API tests: credentials, real photos, hostile images, a photo host.

Plain functions and one context manager; imported by the API test modules.
"""

import base64
import io
import json
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from skimage import data as skdata

from billing import ledger
from billing.models import LedgerEntry, Reservation
from tests.support_billing import ALICE_CREDITS

PIXIAN_PATH = "/api/v2/remove-background"


def assert_error(response, status: int, code: int) -> str:
    """A JSON error in the Pixian format with this status and code; returns its message."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message"}
    assert (body["error"]["status"], body["error"]["code"]) == (status, code)
    assert body["error"]["message"]
    return body["error"]["message"]


def assert_nothing_charged(user, balance: Decimal = ALICE_CREDITS) -> None:
    assert ledger.balance(user) == balance
    assert not LedgerEntry.objects.filter(account__user=user, kind="charge").exists()
    assert not Reservation.objects.filter(account__user=user, status="held").exists()
    assert ledger.check() == []


def basic(key_id: str, secret: str) -> str:
    """An `Authorization` header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


@cache
def photo(name: str = "chelsea", size: tuple[int, int] | None = (240, 160)) -> bytes:
    """A real photo from scikit-image's data module as JPEG bytes (scaled to `size`)."""
    image = Image.fromarray(getattr(skdata, name)()).convert("RGB")
    if size is not None:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(data: bytes, name: str = "example.jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def encode(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def tiny_png(size: tuple[int, int] = (1, 1)) -> bytes:
    return encode(Image.new("RGB", size, (10, 200, 30)))


def rotated_photo(orientation: int = 6) -> bytes:
    """The photo stored sideways with an EXIF orientation tag that says how to turn it."""
    image = Image.open(io.BytesIO(photo()))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes(), quality=90)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bilevel_png(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG of `width` × `height` black pixels, compressed row by row,
    so a decompression bomb of gigapixels is a few hundred kilobytes and never exists in
    memory here (a decoder would need width × height bytes or more)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def decode_result(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def alpha_of(body: bytes) -> np.ndarray:
    return np.asarray(decode_result(body).getchannel("A"))


@contextmanager
def photo_host(files: dict[str, bytes]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1:0 serving `files` by path; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "image/jpeg" if body else "text/plain")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
