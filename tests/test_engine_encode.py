"""Encoders, pixel by pixel: Delta PNG exactly as the Pixian spec defines it, PNG, mask, JPEG."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from removal.engine import encode, segment


def _decode(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skdata.coffee()  # 400 x 600


@pytest.fixture(scope="module")
def alpha(photo) -> np.ndarray:
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.clip((xx - w * 0.3) / (w * 0.4), 0, 1)  # 0 on the left, 255 on the right
    return (ramp * 255).astype(np.uint8)


def test_delta_png_pixels_follow_the_spec(photo, alpha):
    delta = _decode(encode.delta_png(photo, alpha))
    assert delta.shape == (*alpha.shape, 4)
    background, opaque = alpha == 0, alpha == 255
    partial = ~background & ~opaque
    assert background.any() and opaque.any() and partial.any()
    assert (delta[background] == (0, 0, 0, 0)).all()
    assert (delta[opaque] == (255, 255, 255, 0)).all()
    assert np.array_equal(delta[partial][:, :3], photo[partial])
    assert np.array_equal(delta[partial][:, 3], alpha[partial])


def test_delta_png_rebuild_gives_the_cutout(photo, alpha):
    rebuilt = encode.rebuild_from_delta(_decode(encode.delta_png(photo, alpha)), photo)
    assert np.array_equal(rebuilt[:, :, 3], alpha)
    visible = alpha > 0
    assert np.array_equal(rebuilt[:, :, :3][visible], photo[visible])


def test_delta_png_refuses_mismatched_sizes(photo, alpha):
    with pytest.raises(encode.EncodeError):
        encode.delta_png(photo, alpha[:-1])


def test_rgba_png_keeps_colour_and_alpha_and_zeroes_invisible_pixels(photo, alpha):
    out = _decode(encode.png_rgba(photo, alpha))
    assert np.array_equal(out[:, :, 3], alpha)
    visible = alpha > 0
    assert np.array_equal(out[:, :, :3][visible], photo[visible])
    assert (out[~visible] == 0).all()


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_roundtrip_is_exact(photo, alpha, channels):
    pixels = {1: alpha, 3: photo, 4: np.dstack([photo, alpha])}[channels]
    assert np.array_equal(_decode(encode.png(pixels)), pixels)


def test_mask_png_is_8_bit_grey_and_exact(alpha):
    im = Image.open(io.BytesIO(encode.mask_png(alpha)))
    assert im.mode == "L"
    assert np.array_equal(np.asarray(im), alpha)


def test_jpeg_quality_is_honoured(photo):
    low, high = encode.jpeg(photo, 20), encode.jpeg(photo, 95)
    assert len(low) < len(high)
    err = np.abs(_decode(high).astype(int) - photo.astype(int)).mean()
    assert err < 3


def test_alpha_snapping_clears_haze_and_fills_near_opaque():
    prob = np.array([[0.0, 0.02, 0.15, 0.25, 0.5, 0.98, 1.0]], dtype=np.float32)
    snapped = segment.to_alpha(prob)
    assert snapped.tolist() == [[0, 0, 0, 64, 128, 255, 255]]
    assert segment.to_alpha(prob, raw=True).tolist() == [[0, 5, 38, 64, 128, 250, 255]]


def test_large_png_deflated_in_parallel_slices_decodes_exactly(photo, alpha):
    big = cv2.resize(np.dstack([photo, alpha]), (1500, 1000), interpolation=cv2.INTER_CUBIC)
    assert big.nbytes > 2 * encode.SLICE_BYTES
    body = encode.png(big)
    im = Image.open(io.BytesIO(body))
    im.verify()  # checks every chunk's CRC
    assert np.array_equal(_decode(body), big)
    via_libpng = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(cv2.cvtColor(via_libpng, cv2.COLOR_BGRA2RGBA), big)


def test_png_of_one_pixel_and_one_row():
    for pixels in (np.array([[7]], np.uint8), np.full((1, 5, 4), 9, np.uint8)):
        assert np.array_equal(_decode(encode.png(pixels)), pixels)
    assert np.array_equal(
        _decode(encode.png_rgba(np.full((1, 1, 3), 200, np.uint8), np.array([[0]], np.uint8))),
        np.zeros((1, 1, 4), np.uint8),
    )


def test_up_filter_rows_match_the_png_specification():
    rng = np.random.default_rng(3)
    flat = rng.integers(0, 256, size=(9, 12), dtype=np.uint8)
    expected = flat.copy()
    expected[1:] = flat[1:] - flat[:-1]  # mod 256
    for start, stop in ((0, 9), (0, 1), (1, 9), (4, 7), (8, 9)):
        rows = encode._up_rows(flat, start, stop)
        assert (rows[:, 0] == 2).all()
        assert np.array_equal(rows[:, 1:], expected[start:stop])
