"""Result options on real photos, checked by pixels: layout (crop, margins, target size,
alignment, remove.bg's scale and position), compositing and foreground colour estimation."""

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from removal.engine import compose, layout
from removal.engine.types import Box, Length, Margin, RemovalOptions
from removal.errors import RemovalError


def _subject(shape: tuple[int, int], box: tuple[int, int, int, int], soft: float = 0) -> np.ndarray:
    """An alpha with an opaque ellipse filling `box` (x1, y1, x2, y2), optionally softened."""
    x1, y1, x2, y2 = box
    ys, xs = np.indices(shape)
    inside = ((xs - (x1 + x2 - 1) / 2) / ((x2 - x1) / 2)) ** 2 + (
        (ys - (y1 + y2 - 1) / 2) / ((y2 - y1) / 2)
    ) ** 2 <= 1
    alpha = np.where(inside, 255, 0).astype(np.uint8)
    if soft:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soft)
        alpha[:y1], alpha[y2:], alpha[:, :x1], alpha[:, x2:] = 0, 0, 0, 0
    return alpha


def _box_of(alpha: np.ndarray) -> Box:
    ys, xs = np.nonzero(alpha)
    if not len(ys):
        return Box()
    return Box(
        int(ys.min()), int(xs.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    )


@pytest.fixture(scope="module")
def chelsea():
    rgb = skdata.chelsea()  # 451 x 300
    alpha = _subject(rgb.shape[:2], (100, 40, 300, 260))
    return rgb, alpha, _box_of(alpha)


def test_crop_to_foreground_returns_exactly_the_foreground_box(chelsea):
    rgb, alpha, fg = chelsea
    out_rgb, out_alpha, placement = layout.layout(
        rgb, alpha, fg, RemovalOptions(crop_to_foreground=True)
    )
    assert out_alpha.shape == (fg.height, fg.width) == (220, 200)
    assert np.array_equal(out_alpha, alpha[40:260, 100:300])
    assert np.array_equal(out_rgb, rgb[40:260, 100:300])
    assert placement.size == (200, 220)
    assert placement.box(fg) == Box(0, 0, 200, 220) == _box_of(out_alpha)


def test_crop_leaves_an_empty_result_uncropped(chelsea):
    rgb = chelsea[0]
    empty = np.zeros(rgb.shape[:2], np.uint8)
    out_rgb, out_alpha, placement = layout.layout(
        rgb, empty, Box(), RemovalOptions(crop_to_foreground=True)
    )
    assert placement.size == (451, 300) and placement.is_identity
    assert np.array_equal(out_rgb, rgb) and not out_alpha.any()


@pytest.mark.parametrize(
    ("lengths", "expected"),
    [
        ((Length(10),) * 4, (10, 10, 10, 10)),  # "10px"
        ((Length(5), Length(20), Length(5), Length(20)), (5, 20, 5, 20)),  # "5px 20px"
        ((Length(1), Length(2), Length(3), Length(2)), (1, 2, 3, 2)),  # "1px 2px 3px"
        ((Length(1), Length(2), Length(3), Length(4)), (1, 2, 3, 4)),
        # % of the content's height for top/bottom (220 px), its width for left/right (200 px)
        ((Length(10, "%"), Length(5, "%"), Length(0), Length(2.5, "%")), (22, 10, 0, 5)),
    ],
)
def test_margins_surround_the_cropped_content(chelsea, lengths, expected):
    rgb, alpha, fg = chelsea
    margin = Margin(*lengths)
    out_rgb, out_alpha, placement = layout.layout(
        rgb, alpha, fg, RemovalOptions(crop_to_foreground=True, margin=margin)
    )
    top, right, bottom, left = expected
    assert out_alpha.shape == (220 + top + bottom, 200 + left + right)
    # The content sits untouched inside the margins, which are transparent.
    assert np.array_equal(out_rgb[top : top + 220, left : left + 200], rgb[40:260, 100:300])
    assert np.array_equal(out_alpha[top : top + 220, left : left + 200], alpha[40:260, 100:300])
    assert out_alpha.sum() == alpha.sum()
    assert placement.box(fg) == Box(top, left, 200, 220)


def test_margin_without_crop_grows_the_whole_image(chelsea):
    rgb, alpha, fg = chelsea
    margin = Margin(Length(10, "%"), Length(0), Length(0), Length(10, "%"))
    out_rgb, out_alpha, placement = layout.layout(rgb, alpha, fg, RemovalOptions(margin=margin))
    # 10% of the image's height (300) on top, of its width (451) on the left.
    assert out_alpha.shape == (330, 496)
    assert np.array_equal(out_rgb[30:, 45:], rgb)
    assert placement.box(fg) == Box(fg.top + 30, fg.left + 45, fg.width, fg.height)


@pytest.mark.parametrize(
    ("alignment", "top"), [("top", 0), ("middle", (1000 - 440) // 2), ("bottom", 1000 - 440)]
)
def test_target_size_scales_up_centres_and_aligns(chelsea, alignment, top):
    rgb, alpha, fg = chelsea
    options = RemovalOptions(
        crop_to_foreground=True, target_size=(1000, 1000), vertical_alignment=alignment
    )
    out_rgb, out_alpha, placement = layout.layout(rgb, alpha, fg, options)
    assert out_alpha.shape == (1000, 1000)
    # 200 x 220 content fits 1000 x 1000 at 1000/220: 909 x 1000 ... the height binds.
    assert placement.box(fg) == _box_of(out_alpha)
    box = _box_of(out_alpha)
    assert box.height == 1000 and abs(box.width - 909) <= 1
    assert abs(box.left - (1000 - box.width) // 2) <= 1
    # A tall target: the width binds and the vertical slack goes where the alignment says.
    _, out_alpha, _ = layout.layout(
        rgb,
        alpha,
        fg,
        RemovalOptions(
            crop_to_foreground=True, target_size=(400, 1000), vertical_alignment=alignment
        ),
    )
    box = _box_of(out_alpha)
    assert box.width == 400 and box.height == 440
    assert box.top == top


def test_target_size_scales_down_with_the_colours_of_the_photo(chelsea):
    rgb, alpha, fg = chelsea
    opaque = np.full_like(alpha, 255)
    out_rgb, out_alpha, placement = layout.layout(
        rgb, opaque, Box(0, 0, 451, 300), RemovalOptions(target_size=(226, 300))
    )
    # 451 x 300 into 226 x 300: the width binds (half size), centred vertically.
    box = _box_of(out_alpha)
    assert box == Box(75, 0, 226, 150) == placement.box(Box(0, 0, 451, 300))
    expected = cv2.resize(rgb, (226, 150), interpolation=cv2.INTER_AREA)
    assert np.abs(out_rgb[75:225].astype(int) - expected).mean() < 1.0


def test_target_size_margin_is_inset(chelsea):
    rgb, alpha, fg = chelsea
    margin = Margin(Length(50), Length(10, "%"), Length(50), Length(10, "%"))
    options = RemovalOptions(crop_to_foreground=True, target_size=(600, 400), margin=margin)
    out_rgb, out_alpha, placement = layout.layout(rgb, alpha, fg, options)
    assert out_alpha.shape == (400, 600)
    # The area inside the margin is 480 x 300; 200 x 220 content scales to 273 x 300.
    box = _box_of(out_alpha)
    assert box.top == 50 and box.height == 300
    assert abs(box.width - 273) <= 1 and abs(box.left - (60 + (480 - 273) // 2)) <= 1
    assert not out_alpha[:50].any() and not out_alpha[350:].any()
    assert placement.box(fg) == box


def test_a_one_pixel_target_holds_the_subjects_average_colour(chelsea):
    rgb, alpha, fg = chelsea
    out_rgb, out_alpha, _ = layout.layout(
        rgb, alpha, fg, RemovalOptions(crop_to_foreground=True, target_size=(1, 1))
    )
    assert out_rgb.shape == (1, 1, 3) and out_alpha.shape == (1, 1)
    weights = alpha[40:260, 100:300].astype(float)
    mean = (rgb[40:260, 100:300] * weights[..., None]).sum((0, 1)) / weights.sum()
    assert out_alpha[0, 0] > 150
    assert np.abs(out_rgb[0, 0] - mean).max() <= 3


def test_margin_that_fills_the_target_is_refused(chelsea):
    rgb, alpha, fg = chelsea
    options = RemovalOptions(target_size=(100, 100), margin=Margin(*(Length(50, "%"),) * 4))
    with pytest.raises(RemovalError) as caught:
        layout.layout(rgb, alpha, fg, options)
    assert caught.value.code == 2005 and "result.margin" in caught.value.message


def test_a_margin_or_target_that_makes_a_giant_result_is_refused(chelsea):
    rgb, alpha, fg = chelsea
    with pytest.raises(RemovalError) as caught:
        layout.plan((6000, 6000), fg, RemovalOptions(margin=Margin(*(Length(1000),) * 4)))
    assert caught.value.code == 2005
    with pytest.raises(RemovalError) as caught:
        layout.plan((600, 600), fg, RemovalOptions(target_size=(50_000, 50_000)))
    assert caught.value.code == 2006


def test_a_target_or_margin_thinner_than_1000_to_1_is_refused_before_any_pixel(chelsea):
    # The watermark and compositing loops grow with the ratio of the result's sides.
    rgb, alpha, fg = chelsea
    for target in ((25_000_000, 1), (1, 25_000_000), (100_001, 100)):
        with pytest.raises(RemovalError) as caught:
            layout.plan((600, 600), fg, RemovalOptions(target_size=target))
        assert caught.value.code == 2006 and "1000" in caught.value.message
    assert layout.plan((600, 600), fg, RemovalOptions(target_size=(100_000, 100))).size
    wide = RemovalOptions(margin=Margin(Length(0), Length(10_000), Length(0), Length(10_000)))
    with pytest.raises(RemovalError) as caught:
        layout.plan((2, 2), Box(), wide)
    assert caught.value.code == 2005 and "1000" in caught.value.message
    assert layout.plan((30, 30), Box(), wide).size == (20_030, 30)


def test_the_watermark_of_a_thin_result_costs_in_proportion_to_its_length():
    from removal.engine import watermark

    light, dark = watermark.coverage(400_000, 2)  # the lattice has 400,000 cells along it
    assert light.shape == (2, 400_000) and light.any() and dark.any()


def test_scale_fits_the_subject_in_that_share_of_the_result_and_centres_it(chelsea):
    rgb, alpha, fg = chelsea
    out_rgb, out_alpha, placement = layout.layout(rgb, alpha, fg, RemovalOptions(scale=0.5))
    assert out_alpha.shape == alpha.shape  # the result keeps its size
    box = _box_of(out_alpha)
    # 200 x 220 into half of 451 x 300: the height binds, 150 px.
    assert abs(box.height - 150) <= 1 and abs(box.width - 136) <= 1
    assert abs(box.top - (300 - box.height) / 2) <= 1
    assert abs(box.left - (451 - box.width) / 2) <= 1
    assert placement.box(fg) == box


def test_position_moves_the_subject_without_scaling_it(chelsea):
    rgb, alpha, fg = chelsea
    out_rgb, out_alpha, placement = layout.layout(
        rgb, alpha, fg, RemovalOptions(position=(0.0, 1.0))
    )
    box = _box_of(out_alpha)
    assert box == Box(300 - 220, 0, 200, 220) == placement.box(fg)
    assert np.array_equal(
        out_rgb[80:300, 0:200][alpha[40:260, 100:300] > 0],
        rgb[40:260, 100:300][alpha[40:260, 100:300] > 0],
    )


def test_scaling_does_not_bleed_the_hidden_background_into_edges():
    rgb = skdata.coffee().copy()  # 600 x 400
    alpha = _subject(rgb.shape[:2], (150, 100, 450, 300), soft=3)
    rgb[alpha == 0] = (0, 255, 0)  # what lies under transparent pixels must not show
    fg = _box_of(alpha)
    for options in (RemovalOptions(target_size=(97, 61)), RemovalOptions(target_size=(1500, 1000))):
        out_rgb, out_alpha, _ = layout.layout(rgb, alpha, fg, options)
        edge = (out_alpha > 0) & (out_alpha < 255)
        assert edge.sum() > 20
        green_excess = out_rgb[..., 1].astype(int) - out_rgb[..., [0, 2]].max(axis=2)
        assert np.percentile(green_excess[edge], 99) < 60


# --- compositing -------------------------------------------------------------------


def test_composite_is_exact_at_both_ends_and_within_a_level_between():
    rgb = skdata.astronaut()[:2, :3]
    alpha = np.array([[0, 255, 128], [1, 254, 64]], np.uint8)
    out = compose.composite(rgb, alpha, (10, 20, 30))
    a = alpha[..., None].astype(float)
    expected = (rgb * a + np.array([10, 20, 30]) * (255 - a)) / 255
    assert np.abs(out - expected).max() <= 1
    assert np.array_equal(out[0, 0], [10, 20, 30]) and np.array_equal(out[0, 1], rgb[0, 1])


def test_background_image_fills_the_canvas_centred():
    back = skdata.rocket()  # 640 x 427
    fitted = compose.fit_cover(back, (200, 200))
    # Scaled to 300 x 200 (height binds), then 50 px cut from each side.
    expected = cv2.resize(back, (300, 200), interpolation=cv2.INTER_AREA)[:, 50:250]
    assert np.array_equal(fitted, expected)
    assert compose.fit_cover(back, (640, 427)) is back


def test_background_image_shows_through_transparency_only(chelsea):
    rgb, alpha, _ = chelsea
    back_bytes = cv2.imencode(".png", cv2.cvtColor(skdata.rocket(), cv2.COLOR_RGB2BGR))[1]
    options = RemovalOptions(background_image=back_bytes.tobytes())
    out = compose.flatten_background(rgb, alpha, options, opaque=False)
    back = compose.fit_cover(skdata.rocket(), (451, 300))
    assert np.array_equal(out[alpha == 0], back[alpha == 0])
    assert np.array_equal(out[alpha == 255], rgb[alpha == 255])


def test_unreadable_background_image_is_refused_with_its_code(chelsea):
    rgb, alpha, _ = chelsea
    for data in (b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 20):
        with pytest.raises(RemovalError) as caught:
            compose.probe_background(data)
        assert caught.value.code == 2092
    good = cv2.imencode(".png", skdata.rocket())[1].tobytes()
    assert compose.probe_background(good) is None
    with pytest.raises(RemovalError) as caught:
        compose.flatten_background(
            rgb, alpha, RemovalOptions(background_image=b"not an image"), opaque=False
        )
    assert caught.value.code == 2092 and "background image" in caught.value.message


def test_jpeg_without_a_colour_is_laid_on_white_and_png_stays_transparent(chelsea):
    rgb, alpha, _ = chelsea
    assert compose.flatten_background(rgb, alpha, RemovalOptions(), opaque=False) is None
    out = compose.flatten_background(rgb, alpha, RemovalOptions(), opaque=True)
    assert (out[alpha == 0] == 255).all()
    red = compose.flatten_background(rgb, alpha, RemovalOptions(background_color=(255, 0, 0)), True)
    assert np.array_equal(np.unique(red[alpha == 0], axis=0), [[255, 0, 0]])


# --- foreground colour estimation ---------------------------------------------------


@pytest.fixture(scope="module")
def blended():
    """The astronaut laid with a soft, hairy edge over a green-tinted coffee photo: the true
    foreground colours are known everywhere, and the old background's cast is easy to see."""
    fg = cv2.resize(skdata.astronaut(), (600, 400))
    bg = np.clip(skdata.coffee() * np.array([0.3, 1, 0.3]) + (0, 80, 0), 0, 255).astype(np.uint8)
    alpha = np.zeros((400, 600), np.float32)
    cv2.ellipse(alpha, (300, 200), (200, 150), 0, 0, 360, 1.0, -1)
    rng = np.random.default_rng(7)
    for angle in rng.uniform(0, 2 * np.pi, 120):
        start = (int(300 + 200 * np.cos(angle)), int(200 + 150 * np.sin(angle)))
        end = (int(300 + 240 * np.cos(angle + 0.05)), int(200 + 190 * np.sin(angle + 0.05)))
        cv2.line(alpha, start, end, 0.6, 2, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2.5)
    alpha8 = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return fg, bg, alpha8, compose.composite(fg, alpha8, bg)


def test_foreground_estimation_removes_the_old_background_from_soft_edges(blended):
    fg, bg, alpha, image = blended
    estimated = compose.estimate_foreground(image, alpha)
    soft = (alpha > 0) & (alpha < 255)
    assert soft.sum() > 10_000
    # Only soft pixels change.
    assert np.array_equal(estimated[~soft], image[~soft])
    # On a new colour the edge looks like the truth, much closer than the raw photo does
    # (the difference is alpha * (F' - F) on any colour).
    truth = compose.composite(fg, alpha, (0, 0, 0)).astype(float)
    raw_error = np.abs(compose.composite(image, alpha, (0, 0, 0)) - truth)[soft].mean()
    our_error = np.abs(compose.composite(estimated, alpha, (0, 0, 0)) - truth)[soft].mean()
    assert our_error < 0.8 * raw_error, (our_error, raw_error)

    # The old background's green cast in the edge colours is mostly gone.
    def green_cast(rgb):
        diff = rgb.astype(float) - fg
        return (diff[..., 1] - (diff[..., 0] + diff[..., 2]) / 2)[soft].mean()

    assert green_cast(image) > 80
    assert green_cast(estimated) < 0.5 * green_cast(image)


def test_foreground_estimation_leaves_hard_masks_and_empty_masks_alone(blended):
    _, _, alpha, image = blended
    hard = np.where(alpha > 127, 255, 0).astype(np.uint8)
    assert np.array_equal(compose.estimate_foreground(image, hard), image)
    assert np.array_equal(compose.estimate_foreground(image, np.zeros_like(alpha)), image)


def test_foreground_estimation_handles_tiny_and_odd_sized_images():
    rgb = skdata.astronaut()[:3, :5].copy()
    alpha = np.array([[0, 10, 128, 250, 255]] * 3, np.uint8)
    out = compose.estimate_foreground(rgb, alpha)
    assert out.shape == rgb.shape and np.array_equal(out[:, [0, 4]], rgb[:, [0, 4]])
    big = cv2.resize(skdata.astronaut(), (3001, 1999))
    big_alpha = _subject(big.shape[:2], (500, 300, 2500, 1700), soft=6)
    out = compose.estimate_foreground(big, big_alpha)
    assert np.array_equal(out[big_alpha == 255], big[big_alpha == 255])
