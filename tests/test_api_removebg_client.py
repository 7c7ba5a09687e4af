"""remove.bg's published Python client (PyPI `removebg`) against a live server, with only
its endpoint changed (the module constant `API_ENDPOINT`): a file, a base64 string and an
error, as its customers run it."""

import base64
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from PIL import Image
from removebg import RemoveBg
from removebg import removebg as client_module

from billing import ledger
from tests.support_api import photo
from tests.support_billing import ALICE_CREDITS


@pytest.fixture
def client(live_server, alice_key, monkeypatch, tmp_path) -> Iterator[RemoveBg]:
    """The client, its endpoint pointed at the live server (the one change a customer makes).
    Its constructor calls logging.basicConfig(filename=…); any handler that adds is removed."""
    monkeypatch.setattr(client_module, "API_ENDPOINT", f"{live_server.url}/v1.0/removebg")
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    before = list(root.handlers)
    yield RemoveBg(f"{alice_key[0]}:{alice_key[1]}", str(tmp_path / "errors.log"))
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
        handler.close()


def test_the_client_removes_a_files_background_as_a_preview(client, alice, tmp_path: Path):
    source = tmp_path / "cat.jpg"
    source.write_bytes(photo("chelsea", None))
    client.remove_background_from_img_file(str(source))  # size="regular": a preview
    result = Image.open(tmp_path / "cat.jpg_no_bg.png")
    assert result.mode == "RGBA" and result.size == (451, 300)
    assert result.getchannel("A").getextrema() == (0, 255)
    assert ledger.balance(alice) == ALICE_CREDITS - Decimal("0.25")


def test_the_client_sends_base64_and_a_bg_color(client, alice, tmp_path: Path):
    encoded = base64.b64encode(photo()).decode()
    client.remove_background_from_base64_img(encoded, size="hd", bg_color="white")
    result = Image.open(tmp_path / "no-bg.png")
    assert result.mode == "RGB" and result.size == (240, 160)
    assert ledger.balance(alice) == ALICE_CREDITS - 1


def test_the_client_sees_an_error_in_removebgs_format(client, alice, tmp_path: Path):
    source = tmp_path / "broken.jpg"
    source.write_bytes(b"not an image")
    with pytest.raises(requests.HTTPError) as raised:
        client.remove_background_from_img_file(str(source))
    response = raised.value.response
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "failed_to_read_image"
    assert ledger.balance(alice) == ALICE_CREDITS
