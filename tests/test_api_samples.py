"""The vendor's own upload samples (curl and Python, from the Pixian document
../shared/seeds/000_a7764d549b189904.txt) against a live server, with only the substitutions
spec/pixian-v2.md allows: the host, the credentials, and `example.jpeg` being a real photo.
For the `test=true` runs, the option goes where the sample says "TODO: Add more upload options
here". (The `image.url` samples run in tests/test_api_urls.py.)
"""

import io
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from PIL import Image

from billing import ledger
from billing.models import LedgerEntry
from tests.support_api import photo
from tests.support_billing import ALICE_CREDITS

# Verbatim from the vendor document.
CURL_SAMPLE = """$ curl https://api.pixian.ai/api/v2/remove-background \\
 -u xyz123:[secret] \\
 -F image=@example.jpeg \\
 -o pixian_result.png"""

PYTHON_SAMPLE = """# Requires "requests" to be installed (the PyPI package "requests")
import requests

response = requests.post(
    'https://api.pixian.ai/api/v2/remove-background',
    files={'image': open('example.jpeg', 'rb')},
    data={
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

VENDOR_DOC = "seeds/000_a7764d549b189904.txt"
PYTHON_TODO = "        # TODO: Add more upload options here\n"
HEADERS = [
    "X-Credits-Charged",
    "X-Input-Orientation",
    "X-Input-Size",
    "X-Result-Size",
    "X-Input-Foreground",
    "X-Result-Foreground",
]


def substituted(sample: str, server: str, key: tuple[str, str]) -> str:
    """The host and the credentials; each must occur, so the sample cannot drift unnoticed."""
    key_id, secret = key
    for placeholder in ("https://api.pixian.ai", "xyz123", "[secret]"):
        assert placeholder in sample
    return (
        sample.replace("https://api.pixian.ai", server)
        .replace("xyz123", key_id)
        .replace("[secret]", secret)
    )


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A folder holding `example.jpeg`, a real photo (scikit-image's cat)."""
    (tmp_path / "example.jpeg").write_bytes(photo("chelsea", None))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_curl(script: str, cwd: Path) -> None:
    command = script.removeprefix("$ ")
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def run_python(script: str):
    """Runs the sample in this process (so its `response` can be inspected); returns it."""
    namespace: dict = {}
    exec(compile(script, "pixian_sample.py", "exec"), namespace)
    return namespace["response"]


def assert_cutout(path: Path) -> None:
    result = Image.open(path)
    assert result.format == "PNG" and result.mode == "RGBA"
    assert result.size == (451, 300)  # chelsea, full size
    assert result.getchannel("A").getextrema() == (0, 255)


def charges(user) -> list[Decimal]:
    return [e.amount for e in LedgerEntry.objects.filter(account__user=user, kind="charge")]


def test_samples_are_verbatim_from_the_vendor_document():
    doc = Path(django_settings.SHARED_DIR) / VENDOR_DOC
    if not doc.exists():
        pytest.skip(f"vendor document not found under CUTOUT_SHARED_DIR ({doc})")
    text = doc.read_text()
    assert CURL_SAMPLE in text
    assert PYTHON_SAMPLE in text


def test_curl_sample_uploads_and_is_charged(live_server, alice, alice_key, workdir):
    run_curl(substituted(CURL_SAMPLE, live_server.url, alice_key), workdir)
    assert_cutout(workdir / "pixian_result.png")
    assert charges(alice) == [Decimal(-1)]
    assert ledger.balance(alice) == ALICE_CREDITS - 1


def test_curl_sample_with_test_true_is_free(live_server, alice, alice_key, workdir):
    script = substituted(CURL_SAMPLE, live_server.url, alice_key).replace(
        " -o pixian_result.png", " -F test=true \\\n -o pixian_result.png"
    )
    run_curl(script, workdir)
    assert_cutout(workdir / "pixian_result.png")
    assert charges(alice) == []


def test_python_sample_gets_a_png_with_alpha_and_every_header(
    live_server, alice, alice_key, workdir
):
    response = run_python(substituted(PYTHON_SAMPLE, live_server.url, alice_key))
    assert response.status_code == 200, response.text[:300]
    assert_cutout(workdir / "pixian_result.png")
    assert response.headers["Content-Type"] == "image/png"
    for header in HEADERS:
        assert response.headers[header], header
    assert "X-Credits-Calculated" not in response.headers
    assert response.headers["X-Input-Size"] == response.headers["X-Result-Size"] == "451 300"
    assert response.headers["X-Input-Orientation"] == "1"
    assert response.headers["X-Credits-Charged"] == "1"
    assert charges(alice) == [Decimal(-1)]  # the header is the ledger entry


def test_python_sample_with_test_true_says_what_it_would_cost(
    live_server, alice, alice_key, workdir
):
    script = substituted(PYTHON_SAMPLE, live_server.url, alice_key)
    script = script.replace(PYTHON_TODO, PYTHON_TODO + "        'test': 'true',\n")
    response = run_python(script)
    assert response.status_code == 200, response.text[:300]
    assert_cutout(workdir / "pixian_result.png")
    for header in HEADERS:
        assert response.headers[header], header
    assert response.headers["X-Credits-Charged"] == "0"
    assert response.headers["X-Credits-Calculated"] == "1"
    assert charges(alice) == []


def test_python_sample_prints_the_error_json_for_a_wrong_secret(
    live_server, alice, alice_key, workdir, capsys
):
    response = run_python(substituted(PYTHON_SAMPLE, live_server.url, (alice_key[0], "wrong")))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 4002
    assert "Error: 401" in capsys.readouterr().out


def test_a_body_over_the_cap_gets_413_json_over_a_real_socket(
    live_server, alice, alice_key, workdir, settings
):
    import requests

    settings.CUTOUT_MAX_UPLOAD_MB = 1
    big = io.BytesIO(os.urandom(2 * 1024 * 1024))
    response = requests.post(
        f"{live_server.url}/api/v2/remove-background",
        files={"image": ("big.jpeg", big)},
        auth=alice_key,
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 1004
    assert charges(alice) == []
