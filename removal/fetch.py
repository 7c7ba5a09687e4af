"""Fetching `image.url` without server-side request forgery (the spec's "Fetching URLs").

Rules, each with its own code: http(s) only (3001); every address the host resolves to must
be public (3002), checked on every redirect hop *and* on the socket actually connected, because
the connection is pinned to the address we vetted (the host is resolved once, by us, and httpx
never resolves it again), so DNS rebinding cannot reach 127.0.0.1 or 169.254.169.254; at most
`max_redirects` redirects (3003); one hard deadline over resolving, connecting, TLS and every
read, so a server that never answers or trickles bytes forever cannot hold the worker (3004);
at most `max_bytes` (3005); and the bytes must look like an image (1005/1006/1007).
"""

import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable

import httpcore
import httpx
from django.conf import settings

from removal.errors import RemovalError

MAX_REDIRECTS = 3
USER_AGENT = "Cutout image.url fetcher"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host name -> the IP addresses (as text) it resolves to; tests pass their own.
Resolver = Callable[[str, float], list[str]]

# IANA special-purpose ranges that are never a public web server. `is_global` is checked as
# well, but its exact table changed between Python releases, so the list is spelled out here.
_BLOCKED_V4 = [
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and broadcast
    )
]
_BLOCKED_V6 = [
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
        "::ffff:0:0:0/96",  # SIIT IPv4-translated
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64 or 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_allowed_address(ip: IPAddress, *, allow_loopback: bool = False) -> bool:
    """True when `ip` is a public unicast address (or loopback, when tests allow it)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_allowed_address(inner, allow_loopback=allow_loopback)
        if allow_loopback and ip.is_loopback:
            return True
        blocked = any(ip in net for net in _BLOCKED_V6)
    else:
        if allow_loopback and ip.is_loopback:
            return True
        blocked = any(ip in net for net in _BLOCKED_V4)
    return not (
        blocked
        or not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve_host(host: str, timeout_s: float) -> list[str]:
    """The system resolver, bounded: getaddrinfo has no time-out of its own, so it runs in a
    daemon thread that we stop waiting for at the deadline."""
    result: list = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=lookup, name="image-url-dns", daemon=True)
    thread.start()
    thread.join(max(timeout_s, 0))
    if not result:
        raise RemovalError(3004, f"image.url: resolving {host} timed out.")
    if isinstance(result[0], OSError):
        raise RemovalError(3004, f"image.url: the host {host} could not be resolved.")
    return [info[4][0] for info in result[0]]


class _Deadline:
    def __init__(self, timeout_s: float):
        self.end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def clamp(self, timeout: float | None, error: type[Exception]) -> float:
        """The time-out for one I/O step: never past the deadline."""
        left = self.remaining()
        if left <= 0:
            raise error("image.url: the deadline has passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connected socket whose every read, write and TLS handshake stops at the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name, so SNI and certificate checks use the name
        # even though the socket was opened to a vetted IP address.
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network layer with our own resolution: vet every address, connect to one of
    them by IP, and check the peer of the socket we got."""

    def __init__(self, resolver: Resolver, allow_loopback: bool, deadline: _Deadline):
        self._resolver = resolver
        self._allow_loopback = allow_loopback
        self._deadline = deadline
        self._sync = httpcore.SyncBackend()

    def vetted_addresses(self, host: str) -> list[str]:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            answers = self._resolver(host, self._deadline.clamp(None, httpcore.ConnectTimeout))
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        if not addresses:
            raise RemovalError(3004, f"image.url: the host {host} could not be resolved.")
        # Every answer must be public: a name with one private answer is refused outright, so a
        # round-robin or a later retry cannot land on the private one.
        for ip in addresses:
            if not is_allowed_address(ip, allow_loopback=self._allow_loopback):
                raise RemovalError(
                    3002,
                    f"image.url: {host} resolves to {ip}, a private, loopback or reserved address.",
                )
        return [str(ip) for ip in addresses]

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for ip in self.vetted_addresses(host):
            step = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._sync.connect_tcp(ip, port, step, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            peer = ipaddress.ip_address(stream.get_extra_info("server_addr")[0].split("%", 1)[0])
            if not is_allowed_address(peer, allow_loopback=self._allow_loopback):
                stream.close()
                raise RemovalError(3002, f"image.url: connected to {peer}, a private address.")
            return _DeadlineStream(stream, self._deadline)
        assert last_error is not None
        raise last_error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("image.url: unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(self._deadline.remaining(), 0)))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes a good part of a second: once per process, not per fetch
    # (an SSLContext is safe to share between threads).
    return httpx.create_ssl_context()


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _PinnedBackend):
        # trust_env=False: an HTTP(S)_PROXY from the environment would resolve the host itself.
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        # httpx has no public argument for httpcore's network backend, so the pool is rebuilt
        # with the same defaults and ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=1,
            network_backend=backend,
        )


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


def check_image_bytes(data: bytes) -> None:
    """Raise 1005 (empty), 1007 (an image format we do not read) or 1006 (not an image)."""
    if not data:
        raise RemovalError(1005, "image.url: the download is empty.")
    if any(data.startswith(magic, offset) for offset, magic in _IMAGE_MAGIC):
        return
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return
    if data[4:8] == b"ftyp":
        if data[8:12] in _HEIF_BRANDS:
            return
        raise RemovalError(1007, "image.url: the download is an unsupported image format.")
    head = data[:512].lstrip().lower()
    if any(data.startswith(magic, offset) for offset, magic in _OTHER_IMAGE_MAGIC) or (
        b"<svg" in head
    ):
        raise RemovalError(1007, "image.url: the download is an unsupported image format.")
    raise RemovalError(1006, "image.url: the download is not an image.")


def _checked_url(raw: str | httpx.URL) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        raise RemovalError(3001, "image.url: not a valid http or https URL.") from None
    if url.scheme not in {"http", "https"}:
        raise RemovalError(3001, f"image.url: the scheme {url.scheme!r} is not allowed.")
    if not url.host:
        raise RemovalError(3001, "image.url: the URL has no host.")
    return url


def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RemovalError(3005, f"image.url: the download is larger than {max_bytes} bytes.")
    chunks = bytearray()
    for chunk in response.iter_raw():
        chunks += chunk
        if len(chunks) > max_bytes:
            raise RemovalError(3005, f"image.url: the download is larger than {max_bytes} bytes.")
    return bytes(chunks)


def fetch_image_url(
    url: str,
    *,
    allow_loopback: bool,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
    max_redirects: int = MAX_REDIRECTS,
    resolver: Resolver = resolve_host,
) -> bytes:
    """Download the image at `url` (http or https) and return its bytes.

    `timeout_s` bounds the whole call: DNS, connects, TLS, redirects and the body. Raises
    `RemovalError` 3001-3005 for the URL rules, 1005/1006/1007 when the bytes are not an image
    we read. `allow_loopback` (tests only) lets 127.0.0.0/8 and ::1 through, nothing else.
    `max_bytes` and `timeout_s` default to CUTOUT_URL_MAX_MB and CUTOUT_URL_TIMEOUT_S.
    """
    if max_bytes is None:
        max_bytes = settings.CUTOUT_URL_MAX_MB * 1024 * 1024
    if timeout_s is None:
        timeout_s = settings.CUTOUT_URL_TIMEOUT_S
    deadline = _Deadline(timeout_s)
    backend = _PinnedBackend(resolver, allow_loopback, deadline)
    current = _checked_url(url)
    headers = {"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"}
    try:
        with httpx.Client(
            transport=_PinnedTransport(backend),
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
        ) as client:
            for hop in range(max_redirects + 1):
                with client.stream("GET", current, headers=headers) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise RemovalError(3004, "image.url: a redirect without Location.")
                        if hop == max_redirects:
                            raise RemovalError(
                                3003, f"image.url: more than {max_redirects} redirects."
                            )
                        current = _checked_url(current.join(location))
                        continue
                    if response.status_code != 200:
                        raise RemovalError(
                            3004,
                            f"image.url: the server answered HTTP {response.status_code}.",
                        )
                    data = _read_body(response, max_bytes)
                    break
    except httpx.TimeoutException:
        raise RemovalError(
            3004, f"image.url: the download took longer than {timeout_s:g} s."
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RemovalError(
            3004, f"image.url: the download failed ({type(exc).__name__})."
        ) from None
    check_image_bytes(data)
    return data
