"""The image.url fetcher against real servers on 127.0.0.1: every SSRF trick gets its own code.

Names that must resolve to chosen addresses go through the resolver argument of
`fetch_image_url` (its real code path: the fetcher resolves every host itself and connects to
the address it vetted), so no test needs outside DNS.
"""

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time

import httpx
import pytest

from removal import errors, safe_http
from removal.errors import RemovalError
from removal.fetch import UrlCodes, check_image_bytes, fetch_image_url
from removal.safe_http import is_allowed_address


def table_resolver(table: dict[str, list[str]]):
    calls: list[str] = []

    def resolve(host: str, timeout_s: float) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls
    return resolve


def fetch_error(url: str, **kwargs) -> RemovalError:
    kwargs.setdefault("allow_loopback", False)
    with pytest.raises(RemovalError) as caught:
        fetch_image_url(url, **kwargs)
    return caught.value


def test_fetches_an_image_from_an_allowed_host(image_host):
    data = fetch_image_url(image_host.url("/image.png"), allow_loopback=True)
    assert data == image_host.png


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "gopher://x/"])
def test_refuses_schemes_other_than_http_and_https(url):
    assert fetch_error(url, allow_loopback=True).code == 3001


def test_refuses_a_url_without_a_host():
    assert fetch_error("http:///image.png").code == 3001


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "127.1"],
    ids=["loopback", "ipv4-mapped-loopback", "decimal-loopback", "short-loopback"],
)
def test_refuses_loopback_in_production_without_connecting(image_host, host):
    error = fetch_error(f"http://{host}:{image_host.port}/image.png")
    assert error.code == 3002
    assert image_host.hits == []


def test_refuses_ipv6_loopback():
    assert fetch_error("http://[::1]:9/image.png").code == 3002


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/image.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/image.png",
        "http://[fd00::1]/image.png",
        "http://[fe80::1]/image.png",
        "http://100.64.0.1/image.png",
        "http://0.0.0.0/image.png",
    ],
)
def test_refuses_private_addresses_even_when_loopback_is_allowed(url):
    assert fetch_error(url, allow_loopback=True).code == 3002


def test_refuses_a_public_looking_name_that_resolves_to_a_private_address(image_host):
    resolver = table_resolver({"images.example.com": ["127.0.0.1"]})
    url = f"http://images.example.com:{image_host.port}/image.png"
    assert fetch_error(url, resolver=resolver).code == 3002
    assert image_host.hits == []


def test_refuses_a_name_with_any_private_answer():
    resolver = table_resolver({"cdn.example.com": ["93.184.215.14", "10.1.2.3"]})
    assert fetch_error("http://cdn.example.com/a.png", resolver=resolver).code == 3002


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/image.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://metadata.example.com/latest/meta-data/",
    ],
)
def test_refuses_a_redirect_to_a_private_address(image_host, target):
    resolver = table_resolver({"metadata.example.com": ["169.254.169.254"]})
    url = image_host.url(f"/redirect?to={target}")
    error = fetch_error(url, allow_loopback=True, resolver=resolver)
    assert error.code == 3002
    assert image_host.hits == [f"/redirect?to={target}"]


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x.png"])
def test_refuses_a_redirect_to_another_scheme(image_host, target):
    url = image_host.url(f"/redirect?to={target}")
    assert fetch_error(url, allow_loopback=True).code == 3001


def test_follows_three_redirects_and_refuses_a_fourth(image_host):
    assert fetch_image_url(image_host.url("/chain/3"), allow_loopback=True) == image_host.png
    assert fetch_error(image_host.url("/chain/4"), allow_loopback=True).code == 3003


def test_connects_to_the_address_it_vetted_not_to_a_second_lookup(image_host):
    # A rebinding name answers differently on each lookup. The fetcher resolves once per
    # connection and connects to exactly that answer, so the second answer is never used.
    answers = [["127.0.0.1"], ["10.0.0.1"]]
    calls: list[str] = []

    def rebinding(host: str, timeout_s: float) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), 2) - 1]

    url = f"http://rebind.example.com:{image_host.port}/image.png"
    assert fetch_image_url(url, allow_loopback=True, resolver=rebinding) == image_host.png
    assert calls == ["rebind.example.com"]


def test_keeps_the_host_name_in_the_request(image_host):
    resolver = table_resolver({"images.example.com": ["127.0.0.1"]})
    url = f"http://images.example.com:{image_host.port}/image.png"
    assert fetch_image_url(url, allow_loopback=True, resolver=resolver) == image_host.png


def test_refuses_an_html_page(image_host):
    assert fetch_error(image_host.url("/page.html"), allow_loopback=True).code == 1006


def test_refuses_html_served_as_image_png(image_host):
    assert fetch_error(image_host.url("/mislabelled.png"), allow_loopback=True).code == 1006


def test_refuses_an_image_format_it_does_not_read(image_host):
    assert fetch_error(image_host.url("/drawing.svg"), allow_loopback=True).code == 1007


def test_refuses_an_empty_download(image_host):
    assert fetch_error(image_host.url("/empty"), allow_loopback=True).code == 1005


def test_reports_an_http_error_status(image_host):
    error = fetch_error(image_host.url("/missing"), allow_loopback=True)
    assert error.code == 3004
    assert "404" in error.message


def test_reports_a_closed_port():
    assert fetch_error("http://127.0.0.1:9/image.png", allow_loopback=True).code == 3004


def test_gives_up_on_a_server_that_never_answers(image_host):
    started = time.monotonic()
    error = fetch_error(image_host.url("/never"), allow_loopback=True, timeout_s=1)
    assert error.code == 3004
    assert time.monotonic() - started < 3


def test_gives_up_on_a_server_that_trickles_forever(image_host):
    # Each byte arrives well within any read time-out; only a total deadline stops this.
    started = time.monotonic()
    error = fetch_error(image_host.url("/trickle"), allow_loopback=True, timeout_s=1)
    assert error.code == 3004
    assert time.monotonic() - started < 3


def test_stops_reading_a_server_that_floods_forever(image_host):
    url = image_host.url("/flood")
    assert fetch_error(url, allow_loopback=True, max_bytes=1_000_000).code == 3005


def test_refuses_a_declared_size_over_the_cap_before_reading(image_host):
    assert fetch_error(image_host.url("/declared-huge"), allow_loopback=True).code == 3005


def test_refuses_a_download_over_the_cap(image_host):
    url = image_host.url("/image.png")
    assert fetch_error(url, allow_loopback=True, max_bytes=len(image_host.png) - 1).code == 3005


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "198.18.0.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2002:a00:1::",
        "2002:7f00:1::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)
def test_address_policy_refuses(address):
    assert not is_allowed_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_address_policy_allows_public_unicast(address):
    assert is_allowed_address(ipaddress.ip_address(address))


def test_allowing_loopback_allows_loopback_only():
    assert is_allowed_address(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    assert is_allowed_address(ipaddress.ip_address("::1"), allow_loopback=True)
    assert not is_allowed_address(ipaddress.ip_address("10.0.0.1"), allow_loopback=True)
    assert not is_allowed_address(ipaddress.ip_address("169.254.169.254"), allow_loopback=True)


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00",
        b"\xff\xd8\xff\xe0",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"II*\x00",
        b"BM\x00",
        b"\x00\x00\x00\x18ftypheic",
    ],
)
def test_image_magic_accepts_the_formats_the_engine_reads(data):
    check_image_bytes(data)


@pytest.fixture
def tls_host(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for images.example.com;
    it records the server name (SNI) each handshake asked for."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=images.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve_one() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass  # the client refuses our self-signed certificate, as it should

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    yield listener.getsockname()[1], names
    thread.join(10)
    listener.close()


def test_https_goes_to_the_vetted_address_with_the_host_name_for_sni_and_checks(tls_host):
    port, names = tls_host
    resolver = table_resolver({"images.example.com": ["127.0.0.1"]})
    url = f"https://images.example.com:{port}/image.png"
    error = fetch_error(url, allow_loopback=True, resolver=resolver)
    # Connected to 127.0.0.1, asked for the name in the URL, and refused the untrusted cert.
    assert names == ["images.example.com"]
    assert error.code == 3004


# --- the same rules under another field's name and codes, and the connection on its own -------

BACKGROUND_CODES = UrlCodes(
    scheme=errors.BAD_OPTION,
    address=errors.BAD_OPTION,
    redirects=errors.BAD_BACKGROUND_IMAGE,
    failed=errors.BAD_BACKGROUND_IMAGE,
    too_large=errors.BAD_BACKGROUND_IMAGE,
    empty=errors.BAD_BACKGROUND_IMAGE,
    unreadable=errors.BAD_BACKGROUND_IMAGE,
    unsupported=errors.BAD_BACKGROUND_IMAGE,
)


@pytest.mark.parametrize(
    ("path", "allow_loopback", "code"),
    [
        ("/image.png", False, errors.BAD_OPTION),  # a loopback address
        ("/missing", True, errors.BAD_BACKGROUND_IMAGE),
        ("/page.html", True, errors.BAD_BACKGROUND_IMAGE),
        ("/chain/9", True, errors.BAD_BACKGROUND_IMAGE),
    ],
)
def test_another_field_gets_its_own_codes_and_name(image_host, path, allow_loopback, code):
    error = fetch_error(
        image_host.url(path),
        allow_loopback=allow_loopback,
        field="bg_image_url",
        codes=BACKGROUND_CODES,
    )
    assert error.code == code
    assert error.message.startswith("bg_image_url: ") and "image.url" not in error.message


def test_another_field_gets_its_scheme_code():
    error = fetch_error("ftp://example.com/a.png", field="bg_image_url", codes=BACKGROUND_CODES)
    assert (error.code, error.message.split(":")[0]) == (errors.BAD_OPTION, "bg_image_url")


def test_the_pinned_client_posts_to_public_addresses_only(image_host):
    with safe_http.safe_client(5, allow_loopback=True) as client:
        assert client.get(image_host.url("/image.png")).content == image_host.png
    with pytest.raises(safe_http.BlockedAddressError), safe_http.safe_client(5) as client:
        client.post(image_host.url("/image.png"), content=b"{}")
    assert image_host.hits == ["/image.png"]


def test_the_pinned_client_stops_at_its_deadline(image_host):
    started = time.monotonic()
    with (
        pytest.raises(httpx.TimeoutException),
        safe_http.safe_client(0.5, allow_loopback=True) as client,
    ):
        client.get(image_host.url("/never"))
    assert time.monotonic() - started < 10
