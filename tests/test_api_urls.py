"""`image.url` through the Pixian API: each hostile URL of issue 8 gets its own code, nothing is
charged, and no worker waits past the time-out. Then the vendor's own `image.url` samples (curl
and Python, from the Pixian documents) run against a live server, with only the substitutions
spec/pixian-v2.md allows: the host, the credentials and the image URL (a server on 127.0.0.1).
"""

import io
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.test import Client
from PIL import Image

from billing import ledger
from billing.models import LedgerEntry, Reservation
from tests.support_api import PIXIAN_PATH, basic, photo
from tests.support_billing import ALICE_CREDITS


@pytest.fixture
def api(alice_key) -> Client:
    return Client(HTTP_AUTHORIZATION=basic(*alice_key))


@pytest.fixture
def photo_url(image_host) -> str:
    image_host.files["/example.jpeg"] = (photo(), "image/jpeg")
    return image_host.url("/example.jpeg")


def post_url(api: Client, url: str):
    return api.post(PIXIAN_PATH, {"image.url": url})


def assert_refused(response, status: int, code: int, user) -> None:
    assert response.status_code == status, response.content[:300]
    assert response.json()["error"]["code"] == code
    assert ledger.balance(user) == ALICE_CREDITS
    assert not LedgerEntry.objects.filter(account__user=user, kind="charge").exists()
    assert not Reservation.objects.filter(account__user=user, status="held").exists()


def test_a_url_on_an_allowed_host_is_removed_and_charged(api, settings, alice, photo_url):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    response = post_url(api, photo_url)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    assert response["X-Credits-Charged"] == "1"
    assert ledger.balance(alice) == ALICE_CREDITS - Decimal(1)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "localhost", "2130706433"],
    ids=["ipv4-loopback", "ipv6-loopback", "ipv4-mapped", "name-to-loopback", "decimal"],
)
def test_loopback_in_any_spelling_is_refused(api, alice, image_host, host):
    # localhost is a name that the system resolver maps to 127.0.0.1 (/etc/hosts).
    response = post_url(api, f"http://{host}:{image_host.port}/image.png")
    assert_refused(response, 400, 3002, alice)
    assert image_host.hits == []


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/example.jpeg", "http://169.254.169.254/latest/meta-data/"],
)
def test_private_addresses_are_refused_even_with_loopback_allowed(api, settings, alice, url):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    assert_refused(post_url(api, url), 400, 3002, alice)


def test_a_redirect_to_a_private_address_is_refused(api, settings, alice, image_host):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    url = image_host.url("/redirect?to=http://169.254.169.254/latest/meta-data/")
    assert_refused(post_url(api, url), 400, 3002, alice)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/example.jpeg"])
def test_other_schemes_are_refused(api, alice, url):
    assert_refused(post_url(api, url), 400, 3001, alice)


def test_too_many_redirects_are_refused(api, settings, alice, image_host):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    assert_refused(post_url(api, image_host.url("/chain/4")), 400, 3003, alice)


def test_an_html_page_is_not_an_image(api, settings, alice, image_host):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    assert_refused(post_url(api, image_host.url("/page.html")), 400, 1006, alice)


@pytest.mark.parametrize("path", ["/never", "/trickle"], ids=["never-answers", "streams-forever"])
def test_a_server_that_holds_the_request_is_cut_off_at_the_time_out(
    api, settings, alice, image_host, path
):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    settings.CUTOUT_URL_TIMEOUT_S = 1.0
    started = time.monotonic()
    response = post_url(api, image_host.url(path))
    assert time.monotonic() - started < 5
    assert_refused(response, 400, 3004, alice)


def test_a_download_over_the_cap_is_refused(api, settings, alice, image_host):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    settings.CUTOUT_URL_MAX_MB = 1
    assert_refused(post_url(api, image_host.url("/flood")), 400, 3005, alice)
    assert_refused(post_url(api, image_host.url("/declared-huge")), 400, 3005, alice)


# --- the vendor's samples ------------------------------------------------------------------------
# Verbatim from ../shared/seeds/000_a7764d549b189904.txt (Pixian's API document).

CURL_SAMPLE = """\
curl https://api.pixian.ai/api/v2/remove-background \\
 -u xyz123:[secret] \\
 -F 'image.url=https://example.com/example.jpeg' \\
 -o pixian_result.png
"""

PYTHON_SAMPLE = """\
# Requires "requests" to be installed (the PyPI package "requests")
import requests

response = requests.post(
    'https://api.pixian.ai/api/v2/remove-background',
    data={
        'image.url': 'https://example.com/example.jpeg',
        # TODO: Add more upload options here
    },
    auth=('xyz123', '[secret]')
)
if response.status_code == requests.codes.ok:
    # Save result
    with open('pixian_result.png', 'wb') as out:
        out.write(response.content)
else:
    print("Error:", response.status_code, response.text)
"""


def substituted(sample: str, server: str, key: tuple[str, str], image_url: str) -> str:
    """The only changes spec/pixian-v2.md allows: host, credentials, image URL."""
    key_id, secret = key
    return (
        sample.replace("https://api.pixian.ai", server)
        .replace("xyz123", key_id)
        .replace("[secret]", secret)
        .replace("https://example.com/example.jpeg", image_url)
    )


def assert_cutout_of_the_photo(path) -> None:
    result = Image.open(path)
    original = Image.open(io.BytesIO(photo()))
    assert result.format == "PNG" and result.mode == "RGBA"
    assert result.size == original.size
    alpha = result.getchannel("A")
    assert alpha.getextrema() == (0, 255)


@pytest.mark.parametrize("language", ["curl", "python"])
def test_the_vendors_image_url_sample_works_unchanged_but_for_host_and_key(
    live_server, settings, alice, alice_key, photo_url, tmp_path, language
):
    settings.CUTOUT_ALLOW_LOOPBACK_URLS = True
    if language == "curl":
        script = substituted(CURL_SAMPLE, live_server.url, alice_key, photo_url)
        command = ["bash", "-c", script]
    else:
        script = substituted(PYTHON_SAMPLE, live_server.url, alice_key, photo_url)
        command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_cutout_of_the_photo(tmp_path / "pixian_result.png")
    assert ledger.balance(alice) == ALICE_CREDITS - Decimal(1)
