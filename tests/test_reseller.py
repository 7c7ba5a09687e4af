"""Reseller mode through both hops: a customer of the reseller (a real gunicorn with
`CUTOUT_ENGINE=pixian`) is served by its upstream (another real gunicorn, local engine), is
charged the upstream's charge × markup, and the upstream is charged once per customer call."""

import base64
import io
import os
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import PASSWORD
from tests.support_api import photo, photo_host
from tests.support_gunicorn import SERVED_EMAIL
from tests.support_reseller import (
    MARKUP,
    Pair,
    check_ledger,
    fresh_postgres_databases,
    served_pair,
)

REMOVE = "/api/v2/remove-background"
PHOTO = photo("chelsea", (240, 160))


def remove(pair: Pair, fields: dict[str, str] | None = None, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{pair.reseller.url}{REMOVE}",
        auth=pair.customer,
        files={"image": ("cat.jpg", PHOTO, "image/jpeg")},
        data=fields or {},
        headers=headers,
        timeout=120,
    )


def direct(pair: Pair, fields: dict[str, str]) -> httpx.Response:
    """The same call straight to the upstream, with the operator's own key."""
    return httpx.post(
        f"{pair.upstream.url}{REMOVE}",
        auth=pair.operator,
        files={"image": ("cat.jpg", PHOTO, "image/jpeg")},
        data=fields,
        timeout=120,
    )


class Meter:
    """Both balances and the upstream's removal requests, before and after a step."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.customer = pair.customer_credits()
        self.upstream = pair.upstream_credits()
        self.requests = pair.proxy.requests

    def spent(self) -> tuple[Decimal, Decimal, int]:
        """(customer credits spent, upstream credits spent, upstream requests made)."""
        return (
            self.customer - self.pair.customer_credits(),
            self.upstream - self.pair.upstream_credits(),
            self.pair.proxy.requests - self.requests,
        )


EVERY_OPTION_GROUP = {
    "max_pixels": "20000",
    "background.color": "#336699",
    "result.crop_to_foreground": "true",
    "result.margin": "5%",
    "result.target_size": "300 200",
    "result.vertical_alignment": "bottom",
    "output.format": "jpeg",
    "output.jpeg_quality": "60",
}


def test_a_pixian_call_is_forwarded_unchanged_and_charged_the_upstream_charge_times_markup(pair):
    meter = Meter(pair)
    answer = remove(pair, EVERY_OPTION_GROUP)
    assert answer.status_code == 200, answer.text
    assert meter.spent() == (MARKUP, Decimal(1), 1)
    assert answer.headers["X-Credits-Charged"] == str(MARKUP)
    assert "X-Credits-Calculated" not in answer.headers
    assert answer.headers["X-Cutout-Engine"] == "upstream"

    # The upstream's own answer to the same call: the same bytes and X-* headers but for
    # the credits and the request id, which are Cutout's.
    same = direct(pair, EVERY_OPTION_GROUP)
    assert same.status_code == 200
    assert answer.content == same.content
    assert answer.headers["Content-Type"] == same.headers["Content-Type"] == "image/jpeg"
    upstream_headers = {k: v for k, v in same.headers.items() if k.lower().startswith("x-")}
    for name, value in upstream_headers.items():
        if name.lower() in {"x-credits-charged", "x-request-id"}:
            continue
        assert answer.headers[name] == value, name
    assert answer.headers["X-Request-Id"] != same.headers["X-Request-Id"]
    assert Image.open(io.BytesIO(answer.content)).size == (300, 200)
    assert answer.headers["X-Result-Size"] == "300 200"


def test_test_mode_goes_upstream_as_test_and_costs_nobody_anything(pair):
    meter = Meter(pair)
    answer = remove(pair, {"test": "true", "output.format": "png"})
    assert answer.status_code == 200, answer.text
    assert meter.spent() == (0, 0, 1)
    assert answer.headers["X-Credits-Charged"] == "0"
    assert answer.headers["X-Credits-Calculated"] == str(MARKUP)


def test_a_delta_png_comes_through_both_hops_at_the_input_size(pair):
    meter = Meter(pair)
    answer = remove(pair, {"output.format": "delta_png"})
    assert answer.status_code == 200, answer.text
    assert meter.spent() == (MARKUP, 1, 1)
    assert Image.open(io.BytesIO(answer.content)).size == (240, 160)
    assert answer.headers["X-Result-Size"] == answer.headers["X-Input-Size"] == "240 160"


def test_an_answer_lost_on_the_way_back_is_asked_again_with_the_same_key_and_charged_once(pair):
    meter = Meter(pair)
    pair.proxy.drop_next()
    answer = remove(pair, {"background.color": "#ff0000"})
    assert answer.status_code == 200, answer.text
    assert pair.proxy.dropped >= 1
    # Two requests upstream, one charge on each side.
    assert meter.spent() == (MARKUP, 1, 2)
    assert answer.headers["X-Credits-Charged"] == str(MARKUP)


def test_a_customer_retry_with_its_idempotency_key_is_answered_once(pair):
    meter = Meter(pair)
    first = remove(pair, {"output.format": "png"}, **{"Idempotency-Key": "retry-0001"})
    again = remove(pair, {"output.format": "png"}, **{"Idempotency-Key": "retry-0001"})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.content == again.content
    assert meter.spent() == (MARKUP, 1, 1)


@pytest.fixture(scope="module")
def backgrounds():
    with photo_host({"/sky.jpg": photo("coffee", (120, 80))}) as url:
        yield url


def test_requests_invalid_here_never_reach_the_upstream(pair, backgrounds):
    meter = Meter(pair)
    bad_option = remove(pair, {"max_pixels": "5"})
    assert bad_option.status_code == 400 and bad_option.json()["error"]["code"] == 2002
    not_an_image = httpx.post(
        f"{pair.reseller.url}{REMOVE}",
        auth=pair.customer,
        files={"image": ("cat.jpg", b"not an image at all", "image/jpeg")},
        timeout=60,
    )
    assert not_an_image.status_code == 400, not_an_image.text
    rbg = f"{pair.reseller.url}/v1.0/removebg"
    key = {"X-Api-Key": ":".join(pair.customer)}
    files = {"image_file": ("cat.jpg", PHOTO, "image/jpeg")}
    outside = httpx.post(rbg, headers=key, files=files, data={"roi": "500px 500px 600px 600px"})
    assert outside.status_code == 400, outside.text
    missing_bg = httpx.post(
        rbg, headers=key, files=files, data={"bg_image_url": f"{backgrounds}/missing.jpg"}
    )
    assert missing_bg.status_code == 400, missing_bg.text
    assert meter.spent() == (0, 0, 0)


def test_remove_bg_is_rendered_here_from_the_upstreams_cutout(pair, backgrounds):
    meter = Meter(pair)
    answer = httpx.post(
        f"{pair.reseller.url}/v1.0/removebg",
        headers={"X-Api-Key": ":".join(pair.customer)},
        files={"image_file": ("cat.jpg", PHOTO, "image/jpeg")},
        data={
            "size": "full",
            "bg_image_url": f"{backgrounds}/sky.jpg",
            "roi": "10% 10% 90% 90%",
            "format": "png",
        },
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Credits-Charged"] == str(MARKUP)
    assert answer.headers["X-Cutout-Engine"] == "upstream"
    assert meter.spent() == (MARKUP, 1, 1)
    image = Image.open(io.BytesIO(answer.content))
    assert image.size == (240, 160)


def test_a_remove_bg_preview_costs_the_upstream_charge_times_markup(pair):
    meter = Meter(pair)
    answer = httpx.post(
        f"{pair.reseller.url}/v1.0/removebg",
        headers={"X-Api-Key": ":".join(pair.customer)},
        files={"image_file": ("cat.jpg", PHOTO, "image/jpeg")},
        data={"size": "preview", "type": "auto"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert meter.spent() == (MARKUP, 1, 1)


def test_baidu_mask_comes_from_the_upstream_alpha(pair):
    token = httpx.get(
        f"{pair.reseller.url}/oauth/2.0/token",
        params={
            "grant_type": "client_credentials",
            "client_id": pair.customer[0],
            "client_secret": pair.customer[1],
        },
        timeout=30,
    ).json()["access_token"]
    meter = Meter(pair)
    answer = httpx.post(
        f"{pair.reseller.url}/rest/2.0/image-process/v1/segment",
        params={"access_token": token},
        json={"image": base64.b64encode(PHOTO).decode(), "return_form": "mask"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "error_code" not in body, body
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"]))))
    assert mask.shape[:2] == (160, 240)
    assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255
    assert meter.spent() == (MARKUP, 1, 1)


def website(pair: Pair) -> httpx.Client:
    """The customer signed in on the reseller's website, as a browser would be."""
    browser = httpx.Client(base_url=pair.reseller.url, timeout=120)
    # The double-submit pair a browser would carry (pages need collected static files).
    token = "k" * 32
    browser.cookies.set("csrftoken", token)
    signed_in = browser.post(
        "/accounts/login/",
        data={"username": SERVED_EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{pair.reseller.url}/accounts/login/"},
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    # Signing in rotates the token.
    token = signed_in.cookies["csrftoken"]
    browser.cookies.delete("csrftoken")
    browser.cookies.set("csrftoken", token)
    browser.headers["X-CSRFToken"] = token
    browser.headers["Referer"] = f"{pair.reseller.url}/remove/"
    return browser


def test_a_website_upload_is_one_upstream_call_and_its_re_renders_are_free(pair):
    browser = website(pair)
    meter = Meter(pair)
    first = browser.post(
        "/remove/uploads/",
        files={"image": ("cat.jpg", PHOTO, "image/jpeg")},
        data={"key": "page-file-0001"},
    )
    assert first.status_code == 200, first.text[:500]
    assert first.headers["X-Credits-Charged"] == str(MARKUP)
    assert meter.spent() == (MARKUP, 1, 1)
    upload_id = first.headers["X-Upload-Id"]
    meter = Meter(pair)
    for fields in ({"background.color": "#336699"}, {"output.format": "jpeg"}):
        again = browser.post(f"/remove/uploads/{upload_id}/render/", data=fields)
        assert again.status_code == 200, again.text[:500]
        assert again.headers["X-Credits-Charged"] == "0"
    assert meter.spent() == (0, 0, 0)


def test_a_test_mode_upload_is_free_upstream_until_its_first_production_render(pair):
    browser = website(pair)
    meter = Meter(pair)
    first = browser.post(
        "/remove/uploads/",
        files={"image": ("cat.jpg", PHOTO, "image/jpeg")},
        data={"key": "page-file-0002", "test": "true"},
    )
    assert first.status_code == 200, first.text[:500]
    assert first.headers["X-Credits-Charged"] == "0"
    assert meter.spent() == (0, 0, 1)
    upload_id = first.headers["X-Upload-Id"]
    meter = Meter(pair)
    for _ in range(2):
        paid = browser.post(f"/remove/uploads/{upload_id}/render/", data={"output.format": "png"})
        assert paid.status_code == 200, paid.text[:500]
    assert meter.spent() == (MARKUP, 1, 1)


def test_the_readme_steps_give_a_first_marked_up_charge(pair):
    """The README's "From nothing to a first marked-up charge", run as written (but `serve`,
    which the fixture ran, and the upstream, which is the second server here)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("**From nothing to a first marked-up charge**", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    assert "CUTOUT_RESELLER_MARKUP=1.5" in block and str(MARKUP) == "1.5"
    steps = [line.split("#")[0].split() for line in block.splitlines()]
    steps = [step[2:] for step in steps if step[:2] == ["python", "manage.py"]]
    assert [step[0] for step in steps] == [
        "migrate",
        "create_api_key",
        "grant_credits",
        "serve",
        "upstream_status",
    ]
    key = None
    for step in steps[:3]:
        done = pair.manage(*step)
        assert done.returncode == 0, done.stderr
        if step[0] == "create_api_key":
            key = tuple(done.stdout.split())
    curl = next(line for line in block.splitlines() if line.startswith("curl"))
    assert "-u ID:SECRET -F image=@photo.jpg" in curl and REMOVE in curl
    answer = httpx.post(
        f"{pair.reseller.url}{REMOVE}",
        auth=key,
        files={"image": ("photo.jpg", PHOTO, "image/jpeg")},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    promised = block.split("X-Credits-Charged: ", 1)[1].split()[0]
    assert answer.headers["X-Credits-Charged"] == promised == "1.5"
    assert pair.credits(pair.reseller, key) == Decimal("8.5")
    assert "balance is now 8.5" in block
    status = pair.manage(*steps[4])
    assert status.returncode == 0, status.stderr
    assert "upstream credits:" in status.stdout and "last success:" in status.stdout
    # Written by the served process, read by this one (no Redis here: the shared file cache).
    assert "last success: never" not in status.stdout


def test_both_ledgers_are_consistent(pair):
    for data_dir in (pair.reseller_dir, pair.upstream_dir):
        done = check_ledger(data_dir)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.postgres
@pytest.mark.concurrent
def test_both_hops_on_two_postgresql_databases(tmp_path_factory):
    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    databases = fresh_postgres_databases(url, (f"{name}_hop_upstream", f"{name}_hop_reseller"))
    upstream_dir = tmp_path_factory.mktemp("pg-upstream")
    reseller_dir = tmp_path_factory.mktemp("pg-reseller")
    with served_pair(upstream_dir, reseller_dir, databases) as pg:
        meter = Meter(pg)
        assert remove(pg, {"output.format": "png"}).status_code == 200
        assert remove(pg, {"test": "true"}).status_code == 200
        pg.proxy.drop_next()
        assert remove(pg, {"background.color": "#00ff00"}).status_code == 200
        assert meter.spent() == (2 * MARKUP, 2, 4)
    for data_dir, database in ((reseller_dir, databases[1]), (upstream_dir, databases[0])):
        done = check_ledger(data_dir, database)
        assert done.returncode == 0, done.stdout + done.stderr
