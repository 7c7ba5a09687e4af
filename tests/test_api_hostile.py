"""Issue 12's attacks through POST /api/v2/remove-background in test mode (free, so any
account could send them): each is refused with a 4xx and its own code before the work that
would have kept a worker busy, and nothing is charged."""

import pytest
from django.test import Client

from tests.conftest import make_key
from tests.support_api import (
    PIXIAN_PATH,
    assert_error,
    assert_nothing_charged,
    basic,
    bilevel_png,
    tiny_png,
    upload,
)
from tests.support_hostile import (
    FUZZ_CRASH_CODES,
    FUZZ_DIR,
    fuzz_crash,
    gif_with_frames,
    scan_bomb_jpeg,
    tiff_claiming_strips,
)


@pytest.fixture
def api(alice_key) -> Client:
    return Client(HTTP_AUTHORIZATION=basic(*alice_key))


def test_a_progressive_jpeg_with_thousands_of_scans_is_1015(api, alice):
    # 8000 x 4000 passes the pixel cap; decoding its 5,000 scans would take many minutes.
    response = api.post(PIXIAN_PATH, {"image": upload(scan_bomb_jpeg()), "test": "true"})
    assert "5,00" in assert_error(response, 400, 1015)
    assert_nothing_charged(alice)


def test_the_scan_bomb_is_refused_for_an_account_without_credits_too(bob):
    api = Client(HTTP_AUTHORIZATION=basic(*make_key(bob)))
    response = api.post(PIXIAN_PATH, {"image": upload(scan_bomb_jpeg()), "test": "true"})
    assert_error(response, 400, 1015)
    assert_nothing_charged(bob, balance=0)


@pytest.mark.parametrize("size", ["25000000 1", "1 25000000"])
def test_a_target_size_thinner_than_1000_to_1_is_2006(api, alice, size):
    # Within the 25 MP cap, but the test watermark's lattice grew with the square of the ratio.
    fields = {"image": upload(tiny_png((2, 2)), "a.png"), "test": "true"}
    response = api.post(PIXIAN_PATH, {**fields, "result.target_size": size})
    assert "1000" in assert_error(response, 400, 2006)
    assert_nothing_charged(alice)


def test_an_image_of_12500000_by_2_pixels_is_1012(api, alice):
    # 25 MP fits the pixel cap; the file is a few kilobytes.
    image = bilevel_png(12_500_000, 2)
    assert len(image) < 100_000
    response = api.post(PIXIAN_PATH, {"image": upload(image, "a.png"), "test": "true"})
    assert "1000" in assert_error(response, 400, 1012)
    assert_nothing_charged(alice)


def test_margins_that_make_a_result_thinner_than_1000_to_1_are_2005(api, alice):
    fields = {"image": upload(tiny_png((2, 2)), "a.png"), "test": "true"}
    response = api.post(PIXIAN_PATH, {**fields, "result.margin": "0px 10000px"})
    assert "1000" in assert_error(response, 400, 2005)
    assert_nothing_charged(alice)


def test_a_gif_of_more_than_1000_frames_is_1016(api, alice):
    image = gif_with_frames(1001)
    response = api.post(PIXIAN_PATH, {"image": upload(image, "a.gif"), "test": "true"})
    assert_error(response, 400, 1016)
    assert_nothing_charged(alice)


def test_a_tiff_claiming_250000_strips_is_1017(api, alice):
    image = tiff_claiming_strips(250_000)
    response = api.post(PIXIAN_PATH, {"image": upload(image, "a.tif"), "test": "true"})
    assert "250,000" in assert_error(response, 400, 1017)
    assert_nothing_charged(alice)


@pytest.mark.parametrize("name", sorted(p.name for p in FUZZ_DIR.iterdir()))
def test_each_crash_the_fuzzer_found_is_a_400_with_a_decoding_code(api, alice, name):
    # Broken multi-frame TIFF and GIF (frame counting raised outside the error handling) and
    # a corrupt HEIC (libheif's RuntimeError) answered 500.
    response = api.post(PIXIAN_PATH, {"image": upload(fuzz_crash(name), name), "test": "true"})
    assert_error(response, 400, FUZZ_CRASH_CODES[name])
    assert_nothing_charged(alice)
