"""refine.py: the two framings of the photo, the choice between them, and the upsampling."""

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


def _disc_map(
    radius: float, centre: tuple[float, float] = (SIZE / 2, SIZE / 2), edge: float = 2.0
) -> np.ndarray:
    """A subject: 1.0 inside a disc, 0.0 outside, a soft edge `edge` pixels wide."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    distance = np.hypot(yy - centre[0], xx - centre[1])
    return np.clip((radius + edge / 2 - distance) / edge, 0.0, 1.0).astype(np.float32)


class Views:
    """A predictor that answers the stretched view (a photo's own shape) with one map and the
    letterboxed view (a square canvas) with another, and counts its calls."""

    def __init__(self, stretched: np.ndarray, boxed: np.ndarray) -> None:
        self.maps = {"stretched": stretched, "boxed": boxed}
        self.calls: list[str] = []

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        view = "boxed" if rgb.shape[:2] == (SIZE, SIZE) else "stretched"
        self.calls.append(view)
        return self.maps[view]


WIDE = np.zeros((300, 450, 3), np.uint8)


def test_a_sure_stretched_view_costs_one_inference():
    views = Views(_disc_map(80), _disc_map(60))
    prob = refine.predict(views, WIDE, None, SIZE)
    assert views.calls == ["stretched"]
    assert np.array_equal(prob, views.maps["stretched"])


def test_a_square_photo_takes_one_inference_whatever_its_map():
    views = Views(_disc_map(10), _disc_map(80))  # a small subject: in doubt, were it wide
    refine.predict(views, np.zeros((300, 300, 3), np.uint8), None, SIZE)
    assert views.calls == ["stretched"]


@pytest.mark.parametrize(
    "stretched",
    [
        _disc_map(20),  # a small subject, often a part of the real one or the wrong one
        _disc_map(200, centre=(SIZE, 0), edge=20),  # across two sides of the frame
        _disc_map(120, centre=(SIZE, SIZE / 2), edge=4),  # cut by one side (the bottom)
        np.clip(_disc_map(80) * 0.6 + 0.2, 0, 1),  # much of the frame undecided
    ],
    ids=["small", "across-two-sides", "touching-one-side", "undecided"],
)
def test_a_doubtful_stretched_view_asks_for_the_letterboxed_one_and_keeps_both(stretched):
    other = _disc_map(80)
    views = Views(stretched, other)
    prob = refine.predict(views, WIDE, None, SIZE)
    assert views.calls == ["stretched", "boxed"]
    # The letterboxed map comes back in the stretched frame (the inner band of the canvas),
    # and what either view found is kept.
    boxed = refine.letterboxed_view(Views(stretched, other), WIDE, None, SIZE, (SIZE, SIZE))
    assert np.array_equal(prob, np.maximum(stretched, boxed))
    assert (prob >= stretched).all() and (prob >= boxed).all()


def test_only_a_side_that_letterboxing_moves_asks_for_the_second_view():
    """Letterboxing a wide photo pads above and below it: a subject cut by its left side
    touches the border in both views, so a second view cannot help; cut by the left side of a
    tall photo (padded left and right), it can."""
    left = _disc_map(120, centre=(SIZE / 2, 0), edge=4)
    views = Views(left, _disc_map(80))
    refine.predict(views, WIDE, None, SIZE)
    assert views.calls == ["stretched"]
    tall = Views(left, _disc_map(80))
    refine.predict(tall, np.zeros((450, 300, 3), np.uint8), None, SIZE)
    assert tall.calls == ["stretched", "boxed"]


def test_a_second_view_that_finds_nothing_leaves_the_first_as_it_is():
    small = _disc_map(20)
    views = Views(small, np.zeros((SIZE, SIZE), np.float32))
    prob = refine.predict(views, WIDE, None, SIZE)
    assert views.calls == ["stretched", "boxed"]
    assert np.array_equal(prob, small)
    assert refine.doubt(np.zeros((SIZE, SIZE), np.float32)) == float("inf")


def test_combine_keeps_each_pixels_surer_subject():
    left, right = _disc_map(40, centre=(160, 100)), _disc_map(40, centre=(160, 220))
    both = refine.combine(left, right)
    assert both.dtype == np.float32 and both.shape == (SIZE, SIZE)
    assert both[160, 100] == 1.0 and both[160, 220] == 1.0 and both[10, 10] == 0.0


def test_a_real_photo_with_a_clear_subject_costs_one_inference(engine):
    """skimage's coffee cup (3:2): a subject inside the frame, found at once."""
    views = []

    def counting(rgb, alpha):
        views.append(rgb.shape)
        return engine.segmenter.predict(rgb, alpha)

    coffee = skdata.coffee()
    prob = refine.predict(counting, coffee, None, SIZE)
    assert views == [coffee.shape]
    assert np.array_equal(prob, engine.segmenter.predict(coffee))


def test_the_cat_filling_the_frame_is_cut_out_whole(engine):
    """The cat's face touches three borders of the photo: the case the letterboxed view is for.
    Its face (eyes to nose) comes out opaque, the wall at the top right transparent."""
    photo = skdata.chelsea()
    cutout = engine.analyse(_png(photo), RemovalOptions())
    alpha = cutout.alpha
    assert alpha.shape == photo.shape[:2]
    face = alpha[100:250, 60:300]  # eyes at about y=120..190, nose at y=230
    assert (face >= 128).mean() > 0.99  # the stretched view alone: 0.954 with u2netp
    # No see-through fur: between the eyes and down to the nose the stretched view alone
    # gives alpha 203 with u2netp (a background shows through the head).
    assert alpha[60:200, 150:330].min() >= 250
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
