"""The test watermark: visible on any colour, over every large crop, deterministic, and kept
by a client's Delta PNG rebuild."""

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from removal.engine import encode, watermark


def _unmarked_crop_exists(changed: np.ndarray) -> bool:
    """Whether some axis-aligned crop covering more than a tenth of the image holds no
    changed pixel (every width is tried with the least height that passes a tenth)."""
    height, width = changed.shape
    area = width * height / 10
    sums = cv2.integral(changed.astype(np.uint8))
    for w in range(1, width + 1):
        h = int(area // w) + 1
        if h > height:
            continue
        counts = sums[h:, w:] - sums[:-h, w:] - sums[h:, :-w] + sums[:-h, :-w]
        if (counts == 0).any():
            return True
    return False


@pytest.mark.parametrize(
    "size", [(512, 512), (600, 400), (1500, 120), (90, 700), (40, 30), (7, 5), (1, 1), (1, 300)]
)
def test_every_crop_over_a_tenth_of_the_image_shows_the_watermark(size):
    width, height = size
    for colour in (0, 128, 255):
        plain = np.full((height, width, 3), colour, np.uint8)
        marked = watermark.apply(plain)
        # Visible: at least 60 levels away from what was there.
        changed = np.abs(marked.astype(int) - plain).max(axis=2) >= 60
        assert not _unmarked_crop_exists(changed), (size, colour)


def test_watermark_shows_on_a_photo_and_over_transparency():
    photo = skdata.astronaut()
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[100:400, 150:350] = 255
    rgb, new_alpha = watermark.apply(photo, alpha)
    changed = (np.abs(rgb.astype(int) - photo).max(axis=2) >= 60) & (alpha == 255)
    changed |= new_alpha >= 100  # transparent areas become visibly opaque on the lines
    assert not _unmarked_crop_exists(changed)
    assert (new_alpha >= alpha).all()
    # The photo stays recognisable: most pixels are untouched.
    assert (rgb == photo).all(axis=2).mean() > 0.6


def test_watermark_is_deterministic():
    photo = skdata.coffee()
    assert np.array_equal(watermark.apply(photo), watermark.apply(photo.copy()))
    watermark._coverage.cache_clear()
    first = watermark.apply(photo)
    watermark._coverage.cache_clear()
    assert np.array_equal(first, watermark.apply(photo))


def test_watermark_survives_the_delta_png_rebuild():
    photo = skdata.chelsea()
    alpha = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(alpha, (225, 150), (150, 110), 0, 0, 360, 255, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2)
    delta = cv2.cvtColor(encode.delta_bgra(photo, alpha), cv2.COLOR_BGRA2RGBA)
    marked_delta = watermark.apply_to_delta(delta, photo)

    rebuilt = encode.rebuild_from_delta(marked_delta, photo)
    plain = encode.rebuild_from_delta(delta, photo)
    expected_rgb, expected_alpha = watermark.apply(plain[..., :3], plain[..., 3])
    assert np.array_equal(rebuilt[..., 3], expected_alpha)
    visible = expected_alpha > 0
    assert np.array_equal(rebuilt[..., :3][visible], expected_rgb[visible])
    # Outside the watermark the delta keeps its compact markers.
    light, dark = watermark.coverage(*photo.shape[1::-1])
    untouched = (light == 0) & (dark == 0)
    assert np.array_equal(marked_delta[untouched], delta[untouched])
