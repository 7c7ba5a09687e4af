"""refine.py: the two framings of the photo, their union, and the upsampling (real photos)."""

import numpy as np
import pytest
from skimage import data as skdata

from removal.engine import refine
from removal.engine.types import RemovalOptions

SIZE = 320


@pytest.fixture(scope="module")
def rocket() -> np.ndarray:
    return skdata.rocket()  # 427 x 640, a thin subject between launch towers


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return skdata.chelsea()  # 300 x 451, a cat's face filling the frame


def test_letterbox_keeps_the_aspect_ratio_and_fills_the_band_with_the_mean_colour(rocket):
    canvas, canvas_alpha, (top, left, inner_h, inner_w) = refine.letterbox(rocket, None, SIZE)
    assert canvas.shape == (SIZE, SIZE, 3) and canvas.dtype == np.uint8
    assert canvas_alpha is None
    assert (left, inner_w) == (0, SIZE)
    assert inner_h == round(427 * SIZE / 640)
    assert top == (SIZE - inner_h) // 2
    mean = canvas[top : top + inner_h].reshape(-1, 3).mean(axis=0)
    band = canvas[:top].reshape(-1, 3)
    assert np.all(np.abs(band.astype(float) - mean) <= 1.0)
    assert np.array_equal(band, canvas[top + inner_h :].reshape(-1, 3)[: len(band)])


def test_letterbox_makes_the_band_opaque_and_carries_the_photos_alpha(chelsea):
    alpha = np.zeros(chelsea.shape[:2], np.uint8)
    alpha[:, : chelsea.shape[1] // 2] = 255
    _, canvas_alpha, (top, left, inner_h, inner_w) = refine.letterbox(chelsea, alpha, SIZE)
    assert canvas_alpha[:top].min() == 255 and canvas_alpha[top + inner_h :].min() == 255
    inner = canvas_alpha[top : top + inner_h, left : left + inner_w]
    assert inner[:, : inner_w // 2 - 2].min() == 255
    assert inner[:, inner_w // 2 + 2 :].max() == 0


def test_a_square_photo_takes_one_inference_and_a_wide_one_two(engine, rocket):
    calls = []

    def counting(rgb, alpha):
        calls.append(rgb.shape)
        return engine.segmenter.predict(rgb, alpha)

    astronaut = skdata.astronaut()
    square = refine.predict(counting, astronaut, None, SIZE)
    assert calls == [astronaut.shape]
    assert np.array_equal(square, engine.segmenter.predict(astronaut))

    calls.clear()
    refine.predict(counting, rocket, None, SIZE)
    assert calls == [rocket.shape, (SIZE, SIZE, 3)]


def test_the_map_is_the_union_of_the_stretched_and_the_letterboxed_views(engine, chelsea):
    union = refine.predict(engine.segmenter.predict, chelsea, None, SIZE)
    stretched = engine.segmenter.predict(chelsea)
    canvas, _, (top, left, inner_h, inner_w) = refine.letterbox(chelsea, None, SIZE)
    boxed = engine.segmenter.predict(canvas)[top : top + inner_h, left : left + inner_w]
    assert union.shape == (SIZE, SIZE) and union.dtype == np.float32
    assert 0.0 <= union.min() and union.max() <= 1.0
    assert np.all(union >= stretched)
    # Where the letterboxed view is the more confident one, the union follows it.
    boxed_up = refine.upsample(boxed, np.empty((SIZE, SIZE, 3), np.uint8))
    gained = union > stretched + 1e-6
    assert gained.any()
    assert np.allclose(union[gained], boxed_up[gained], atol=1e-5)


def test_the_cat_filling_the_frame_is_cut_out_whole(engine):
    """The cat's face touches three borders of the photo: the case the letterboxed view is for.
    Its face (eyes to nose) comes out opaque, the wall at the top right transparent."""
    photo = skdata.chelsea()
    cutout = engine.analyse(_png(photo), RemovalOptions())
    alpha = cutout.alpha
    assert alpha.shape == photo.shape[:2]
    face = alpha[100:250, 60:300]  # eyes at about y=120..190, nose at y=230
    assert (face >= 128).mean() > 0.99  # the stretched view alone: 0.954 with u2netp
    wall = alpha[0:40, 400:451]
    assert (wall < 128).mean() > 0.9


def test_a_photo_without_a_subject_gives_no_ghost_foreground(engine):
    """A smooth gradient has nothing to cut out: the model says so with a low map, which must
    not be stretched into a full-strength subject."""
    ramp = np.linspace(60, 200, 480, dtype=np.float32)
    sky = np.dstack([ramp[None, :].repeat(320, 0) * f for f in (0.6, 0.8, 1.0)])
    cutout = engine.analyse(_png(sky.astype(np.uint8)), RemovalOptions())
    # u2netp's map peaks at 0.004 here; min-max normalised, 2 % of it became opaque.
    assert cutout.alpha.max() < 128


def test_upsample_returns_the_processing_size_as_float32_in_range(rocket):
    low = np.linspace(0, 1, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    out = refine.upsample(low, rocket)
    assert out.shape == rocket.shape[:2] and out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    assert 0.0 <= out.min() and out.max() <= 1.0
    same = refine.upsample(out, rocket)
    assert np.array_equal(same, out)


def _png(pixels: np.ndarray) -> bytes:
    from tests.support_engine import encode_image

    return encode_image(pixels)
