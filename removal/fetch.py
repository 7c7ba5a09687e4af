"""Downloading an image from a URL a client gave (`image.url`, remove.bg's `image_url` and
`bg_image_url`, Baidu's `url`) without server-side request forgery.

The connection rules are safe_http.py's (public addresses only, pinned, one deadline). Here:
http(s) only, at most `max_redirects` redirects (each hop vetted again), at most `max_bytes`,
and the bytes must look like an image we read. Each rule has its own error code, which the
caller chooses per field (`UrlCodes`), and every message names the field.
"""

from dataclasses import dataclass

import httpx
from django.conf import settings

from removal import errors, safe_http
from removal.errors import RemovalError

MAX_REDIRECTS = 3
USER_AGENT = "Cutout image fetcher"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class UrlCodes:
    """The error code of each rule, for one URL field."""

    scheme: int = errors.URL_SCHEME
    address: int = errors.URL_ADDRESS
    redirects: int = errors.URL_REDIRECTS
    failed: int = errors.URL_FAILED
    too_large: int = errors.URL_TOO_LARGE
    empty: int = errors.EMPTY_IMAGE
    unreadable: int = errors.UNREADABLE_IMAGE
    unsupported: int = errors.UNSUPPORTED_FORMAT


IMAGE_URL_CODES = UrlCodes()


# Signatures of the formats the engine reads (BMP, GIF, JPEG, PNG, TIFF, WebP, HEIC/HEIF).
_IMAGE_MAGIC: list[tuple[int, bytes]] = [
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"BM"),
    (0, b"II*\x00"),
    (0, b"MM\x00*"),
]
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
# Images we recognise but do not read: these get "unsupported format" rather than "not an image".
_OTHER_IMAGE_MAGIC: list[tuple[int, bytes]] = [
    (0, b"\x00\x00\x01\x00"),  # ICO
    (0, b"8BPS"),  # Photoshop
    (0, b"\xff\x0a"),  # JPEG XL codestream
    (0, b"\x00\x00\x00\x0cJXL "),  # JPEG XL container
    (0, b"%PDF"),
]


def check_image_bytes(
    data: bytes, field: str = "image.url", codes: UrlCodes = IMAGE_URL_CODES
) -> None:
    """Raise `codes.empty`, `codes.unsupported` (an image format we do not read) or
    `codes.unreadable` (not an image)."""
    if not data:
        raise RemovalError(codes.empty, f"{field}: the download is empty.")
    if any(data.startswith(magic, offset) for offset, magic in _IMAGE_MAGIC):
        return
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return
    if data[4:8] == b"ftyp":
        if data[8:12] in _HEIF_BRANDS:
            return
        raise RemovalError(
            codes.unsupported, f"{field}: the download is an unsupported image format."
        )
    head = data[:512].lstrip().lower()
    if any(data.startswith(magic, offset) for offset, magic in _OTHER_IMAGE_MAGIC) or (
        b"<svg" in head
    ):
        raise RemovalError(
            codes.unsupported, f"{field}: the download is an unsupported image format."
        )
    raise RemovalError(codes.unreadable, f"{field}: the download is not an image.")


def checked_url(raw: str | httpx.URL, field: str, codes: UrlCodes = IMAGE_URL_CODES) -> httpx.URL:
    """`raw` as a URL, or `codes.scheme` when it is not http(s) with a host; the address rules
    are checked when it is fetched (a batch checks its items' URLs this way at submission)."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        raise RemovalError(codes.scheme, f"{field}: not a valid http or https URL.") from None
    if url.scheme not in {"http", "https"}:
        raise RemovalError(codes.scheme, f"{field}: the scheme {url.scheme!r} is not allowed.")
    if not url.host:
        raise RemovalError(codes.scheme, f"{field}: the URL has no host.")
    return url


def _read_body(response: httpx.Response, max_bytes: int, field: str, code: int) -> bytes:
    declared = response.headers.get("content-length", "")
    too_large = f"{field}: the download is larger than {max_bytes} bytes."
    if declared.isdigit() and int(declared) > max_bytes:
        raise RemovalError(code, too_large)
    chunks = bytearray()
    for chunk in response.iter_raw():
        chunks += chunk
        if len(chunks) > max_bytes:
            raise RemovalError(code, too_large)
    return bytes(chunks)


def fetch_image_url(
    url: str,
    *,
    allow_loopback: bool,
    field: str = "image.url",
    codes: UrlCodes = IMAGE_URL_CODES,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
    max_redirects: int = MAX_REDIRECTS,
    resolver: safe_http.Resolver = safe_http.resolve_host,
) -> bytes:
    """Download the image at `url` (http or https) and return its bytes.

    `timeout_s` bounds the whole call: DNS, connects, TLS, redirects and the body. Raises
    `RemovalError` with `codes`' code for each rule, its message naming `field`.
    `allow_loopback` (tests only) lets 127.0.0.0/8 and ::1 through, nothing else.
    `max_bytes` and `timeout_s` default to CUTOUT_URL_MAX_MB and CUTOUT_URL_TIMEOUT_S.
    """
    if max_bytes is None:
        max_bytes = settings.CUTOUT_URL_MAX_MB * 1024 * 1024
    if timeout_s is None:
        timeout_s = settings.CUTOUT_URL_TIMEOUT_S
    current = checked_url(url, field, codes)
    headers = {"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"}
    try:
        with safe_http.safe_client(
            timeout_s, allow_loopback=allow_loopback, resolver=resolver
        ) as client:
            data = _follow(client, current, headers, max_redirects, max_bytes, field, codes)
    except safe_http.BlockedAddressError as exc:
        raise RemovalError(codes.address, f"{field}: {exc}.") from None
    except safe_http.HostNotFoundError as exc:
        raise RemovalError(codes.failed, f"{field}: {exc}.") from None
    except httpx.TimeoutException:
        raise RemovalError(
            codes.failed, f"{field}: the download took longer than {timeout_s:g} s."
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RemovalError(
            codes.failed, f"{field}: the download failed ({type(exc).__name__})."
        ) from None
    check_image_bytes(data, field, codes)
    return data


def _follow(
    client: httpx.Client,
    current: httpx.URL,
    headers: dict[str, str],
    max_redirects: int,
    max_bytes: int,
    field: str,
    codes: UrlCodes,
) -> bytes:
    hops = 0
    while True:
        with client.stream("GET", current, headers=headers) as response:
            if response.status_code not in REDIRECT_STATUSES:
                if response.status_code != 200:
                    raise RemovalError(
                        codes.failed, f"{field}: the server answered HTTP {response.status_code}."
                    )
                return _read_body(response, max_bytes, field, codes.too_large)
            location = response.headers.get("location")
        if not location:
            raise RemovalError(codes.failed, f"{field}: a redirect without Location.")
        if hops == max_redirects:
            raise RemovalError(codes.redirects, f"{field}: more than {max_redirects} redirects.")
        hops += 1
        current = checked_url(current.join(location), field, codes)
