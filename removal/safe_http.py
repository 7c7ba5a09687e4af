"""Outgoing HTTP that a client's request can aim: public addresses only, one deadline.

The address policy (`is_allowed_address`) and a pinned connection (`safe_client`) that every
server-side fetch and post goes through: `image.url` and other image URLs (fetch.py), and
webhooks. Every address a host resolves to must be public, checked on every connection *and*
on the socket actually connected, because the connection is pinned to the address we vetted
(the host is resolved once, by us, and httpx never resolves it again), so DNS rebinding cannot
reach 127.0.0.1 or 169.254.169.254. One deadline covers resolving, connecting, TLS and every
read and write, so a server that never answers or trickles bytes cannot hold a worker.
"""

import contextlib
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Never

import httpcore
import httpx


class AddressError(Exception):
    """A host this policy will not connect to (`BlockedAddressError`) or cannot resolve."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        super().__init__(reason)


class BlockedAddressError(AddressError):
    """The host resolves to (or the socket reached) a private, loopback or reserved address."""


class HostNotFoundError(AddressError):
    """The host did not resolve, or not before the deadline (`timed_out`)."""

    def __init__(self, host: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(host, reason)
        self.timed_out = timed_out


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

    thread = threading.Thread(target=lookup, name="safe-http-dns", daemon=True)
    thread.start()
    thread.join(max(timeout_s, 0))
    if not result:
        raise HostNotFoundError(host, f"resolving {host} timed out", timed_out=True)
    if isinstance(result[0], OSError):
        raise HostNotFoundError(host, f"the host {host} could not be resolved")
    return [info[4][0] for info in result[0]]


class Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def clamp(self, timeout: float | None, error: type[Exception]) -> float:
        """The time-out for one I/O step: never past the deadline."""
        left = self.remaining()
        if left <= 0:
            raise error("the deadline has passed")
        return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connected socket whose every read, write and TLS handshake stops at the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name, so SNI and certificate checks use the name
        # even though the socket was opened to a vetted IP address.
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network layer with our own resolution: vet every address, connect to one of
    them by IP, and check the peer of the socket we got."""

    def __init__(self, resolver: Resolver, allow_loopback: bool, deadline: Deadline) -> None:
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
            raise HostNotFoundError(host, f"the host {host} could not be resolved")
        # Every answer must be public: a name with one private answer is refused outright, so a
        # round-robin or a later retry cannot land on the private one.
        for ip in addresses:
            if not is_allowed_address(ip, allow_loopback=self._allow_loopback):
                raise BlockedAddressError(
                    host, f"{host} resolves to {ip}, a private, loopback or reserved address"
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
                raise BlockedAddressError(host, f"connected to {peer}, a private address")
            return DeadlineStream(stream, self._deadline)
        assert last_error is not None
        raise last_error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable | None = None
    ) -> Never:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(self._deadline.remaining(), 0)))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes a good part of a second: once per process, not per fetch
    # (an SSLContext is safe to share between threads).
    return httpx.create_ssl_context()


class PinnedTransport(httpx.HTTPTransport):
    def __init__(self, backend: PinnedBackend) -> None:
        # trust_env=False: an HTTP(S)_PROXY from the environment would resolve the host itself.
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        # httpx has no public argument for httpcore's network backend, so the pool is rebuilt
        # with the same defaults and ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=1,
            network_backend=backend,
        )


@contextlib.contextmanager
def safe_client(
    timeout_s: float,
    *,
    allow_loopback: bool = False,
    resolver: Resolver = resolve_host,
) -> Iterator[httpx.Client]:
    """An httpx client that reaches public addresses only, never follows redirects by itself
    (each hop must be a new request, so its host is vetted), ignores proxy settings, and
    stops every step at one deadline `timeout_s` from now. Raises `AddressError`s and httpx's
    errors; `allow_loopback` (tests only) lets 127.0.0.0/8 and ::1 through, nothing else."""
    deadline = Deadline(timeout_s)
    backend = PinnedBackend(resolver, allow_loopback, deadline)
    with httpx.Client(
        transport=PinnedTransport(backend),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        yield client


def check_host(
    host: str,
    timeout_s: float,
    *,
    allow_loopback: bool = False,
    resolver: Resolver = resolve_host,
) -> list[str]:
    """The addresses `host` resolves to, each vetted as a connection would be (a webhook URL
    is checked this way when it is given, and again when each delivery connects). Raises
    BlockedAddressError, HostNotFoundError."""
    return PinnedBackend(resolver, allow_loopback, Deadline(timeout_s)).vetted_addresses(host)


def is_literal_allowed(host: str, *, allow_loopback: bool = False) -> bool:
    """False when `host` is an IP literal the policy refuses; a name is checked when it is
    resolved."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return True
    return is_allowed_address(literal, allow_loopback=allow_loopback)
