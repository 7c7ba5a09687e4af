"""render() with every result option on a real photo: the pixels, and the metadata headers
(X-Result-Size, X-Result-Foreground) that must stay right under each layout."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from removal.engine import encode, render
from removal.engine.types import Box, Cutout, Length, Margin, Rect, RemovalOptions
from tests.support_engine import encode_image
from tests.test_watermark import _unmarked_crop_exists


def _pixels(body: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(body)) as image:
        return np.asarray(image.convert("RGBA") if image.mode == "P" else image).copy()


@pytest.fixture(scope="module")
def cutout(engine, astronaut_png):
    return engine.analyse(astronaut_png, RemovalOptions())


def _close(a: Box, b: Box, tolerance: int = 1) -> bool:
    edges = (
        (a.left, b.left),
        (a.top, b.top),
        (a.left + a.width, b.left + b.width),
        (a.top + a.height, b.top + b.height),
    )
    return all(abs(x - y) <= tolerance for x, y in edges)


LAYOUTS = {
    "default": RemovalOptions(),
    "crop": RemovalOptions(crop_to_foreground=True),
    "margin px": RemovalOptions(margin=Margin(Length(7), Length(3), Length(0), Length(11))),
    "crop + margin %": RemovalOptions(
        crop_to_foreground=True, margin=Margin(*(Length(10, "%"),) * 4)
    ),
    "target": RemovalOptions(target_size=(300, 200)),
    "crop + target top": RemovalOptions(
        crop_to_foreground=True, target_size=(640, 480), vertical_alignment="top"
    ),
    "crop + target bottom + margin": RemovalOptions(
        crop_to_foreground=True,
        target_size=(400, 800),
        vertical_alignment="bottom",
        margin=Margin(Length(20), Length(5, "%"), Length(40), Length(5, "%")),
    ),
    "scale": RemovalOptions(scale=0.4),
    "scale + position": RemovalOptions(scale=0.5, position=(1.0, 0.0)),
    "position": RemovalOptions(crop_to_foreground=True, target_size=(900, 600), position=(0, 1)),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_result_size_and_foreground_match_the_pixels(cutout, name):
    options = LAYOUTS[name]
    result = render.render(cutout, options)
    pixels = _pixels(result.body)
    assert pixels.shape[1::-1] == result.result_size
    measured = render.foreground_box(pixels[..., 3])
    assert measured.width > 0
    assert _close(result.result_foreground, measured), (result.result_foreground, measured)
    # The input's box never depends on the result's layout.
    assert result.input_foreground == render.render(cutout, RemovalOptions()).input_foreground
    assert result.input_size == (512, 512)


def test_crop_result_is_the_foreground_box_exactly(cutout):
    plain = _pixels(render.render(cutout, RemovalOptions()).body)
    result = render.render(cutout, RemovalOptions(crop_to_foreground=True))
    box = result.input_foreground
    assert result.result_size == (box.width, box.height)
    assert result.result_foreground == Box(0, 0, box.width, box.height)
    cropped = _pixels(result.body)
    window = plain[box.top : box.top + box.height, box.left : box.left + box.width]
    assert np.array_equal(cropped, window)


def test_delta_png_ignores_result_options_but_keeps_the_watermark(cutout, astronaut_png):
    options = RemovalOptions(
        output_format="delta_png",
        crop_to_foreground=True,
        target_size=(100, 100),
        background_color=(255, 0, 0),
    )
    plain = render.render(cutout, options)
    assert plain.result_size == (512, 512) and plain.result_foreground == plain.input_foreground
    marked = render.render(cutout, RemovalOptions(**{**options.__dict__, "test": True}))
    photo = skdata.astronaut()
    rebuilt_plain = encode.rebuild_from_delta(_pixels(plain.body), photo)
    rebuilt_marked = encode.rebuild_from_delta(_pixels(marked.body), photo)
    changed = (np.abs(rebuilt_marked.astype(int) - rebuilt_plain).max(axis=2) >= 60) | (
        rebuilt_marked[..., 3].astype(int) - rebuilt_plain[..., 3] >= 100
    )
    assert not _unmarked_crop_exists(changed)


@pytest.mark.parametrize(
    "options",
    [
        RemovalOptions(output_format="png"),
        RemovalOptions(output_format="jpeg", jpeg_quality=95),
        RemovalOptions(background_color=(20, 200, 20), output_format="png"),
        RemovalOptions(crop_to_foreground=True, target_size=(300, 300)),
        RemovalOptions(output_format="mask"),
    ],
)
def test_the_watermark_is_in_every_format(cutout, options):
    plain = _pixels(render.render(cutout, options).body).astype(int)
    marked = _pixels(
        render.render(cutout, RemovalOptions(**{**options.__dict__, "test": True})).body
    )
    assert marked.shape == plain.shape
    diff = np.abs(marked.astype(int) - plain)
    changed = diff.max(axis=2) >= 60 if diff.ndim == 3 else diff >= 60
    assert not _unmarked_crop_exists(changed)


def test_background_colour_fills_the_transparent_pixels(cutout):
    transparent = _pixels(render.render(cutout, RemovalOptions()).body)
    result = render.render(
        cutout, RemovalOptions(background_color=(255, 0, 0), output_format="png")
    )
    assert result.content_type == "image/png"
    opaque = _pixels(result.body)
    assert opaque.shape == (512, 512, 3)
    background = transparent[..., 3] == 0
    assert background.mean() > 0.2
    assert (opaque[background] == (255, 0, 0)).all()
    solid = transparent[..., 3] == 255
    assert np.array_equal(opaque[solid], transparent[..., :3][solid])


def test_jpeg_without_a_colour_is_on_white(cutout):
    transparent = _pixels(render.render(cutout, RemovalOptions()).body)
    result = render.render(cutout, RemovalOptions(output_format="jpeg", jpeg_quality=95))
    assert result.content_type == "image/jpeg"
    jpeg = _pixels(result.body).astype(int)
    background = transparent[..., 3] == 0
    assert np.percentile(jpeg[background], 5) >= 245


def test_background_image_is_composited_and_auto_picks_jpeg(cutout):
    back = skdata.rocket()
    options = RemovalOptions(background_image=encode_image(back), jpeg_quality=95)
    result = render.render(cutout, options)
    assert result.content_type == "image/jpeg"
    out = _pixels(result.body).astype(int)
    transparent = _pixels(render.render(cutout, RemovalOptions()).body)
    background = transparent[..., 3] == 0
    from removal.engine.compose import fit_cover

    expected = fit_cover(back, (512, 512)).astype(int)
    assert np.abs(out[background] - expected[background]).mean() < 4


def test_raw_mode_keeps_the_photos_colours_and_the_unsnapped_map(engine, astronaut_png, cutout):
    """Normal results get estimated foreground colours at soft pixels and snapped alpha;
    raw mode (Baidu's refine_mask=false) gets neither."""
    options = RemovalOptions(raw=True)
    raw = _pixels(engine.render(engine.analyse(astronaut_png, options), options).body)
    clean = _pixels(render.render(cutout, RemovalOptions()).body)
    photo = skdata.astronaut()
    soft = (clean[..., 3] > 0) & (clean[..., 3] < 255)
    assert soft.sum() > 500
    # raw keeps the photo's colours at soft pixels; the clean result changes them.
    raw_soft = (raw[..., 3] > 0) & (raw[..., 3] < 255)
    assert np.array_equal(raw[..., :3][raw_soft], photo[raw_soft])
    assert (clean[..., :3][soft] != photo[soft]).any(axis=1).mean() > 0.5
    # raw is not snapped: it has faint alpha values that the normal result rounds away.
    assert ((raw[..., 3] > 0) & (raw[..., 3] <= 10)).any()
    assert not ((clean[..., 3] > 0) & (clean[..., 3] <= 10)).any()


def test_regions_restrict_the_result_and_report_their_box(engine, chelsea_jpeg):
    options = RemovalOptions(regions=(Rect(100, 20, 300, 280),), crop_to_foreground=True)
    result = engine.remove(chelsea_jpeg, options)
    box = result.input_foreground
    assert box.left >= 100 and box.top >= 20
    assert box.left + box.width <= 300 and box.top + box.height <= 280
    assert result.result_size == (box.width, box.height)


def test_boxes_after_max_pixels_are_in_input_and_result_pixels(engine, astronaut_png):
    """max_pixels shrinks the processing: the input box is in the input's pixels, the
    result's in the (smaller) result's."""
    options = RemovalOptions(max_pixels=128 * 128, crop_to_foreground=True)
    result = engine.remove(astronaut_png, options)
    small, full = result.result_foreground, result.input_foreground
    assert result.input_size == (512, 512)
    assert result.result_size == (small.width, small.height) and small.top == small.left == 0
    assert abs(full.width - 4 * small.width) <= 4 and abs(full.height - 4 * small.height) <= 4
    assert _pixels(result.body).shape[1::-1] == result.result_size


def test_a_crop_to_a_foreground_at_the_origin_still_crops():
    """The foreground box starts at (0, 0): the placement's offsets are all zero, and the
    result must still be only the box (it used to be the whole image)."""
    alpha = np.zeros((40, 60), np.uint8)
    alpha[:30, :50] = 255
    cutout = Cutout(rgb=np.full((40, 60, 3), 90, np.uint8), alpha=alpha, full_size=(60, 40))
    result = render.render(cutout, RemovalOptions(crop_to_foreground=True))
    assert result.result_size == (50, 30)
    assert _pixels(result.body).shape == (30, 50, 4)


def test_webp_and_zip_results_and_the_result_pixel_bound(cutout):
    webp = render.render(cutout, RemovalOptions(output_format="webp", max_result_pixels=10_000))
    assert webp.content_type == "image/webp"
    image = Image.open(io.BytesIO(webp.body))
    assert image.size == webp.result_size and image.width * image.height <= 10_000
    assert image.mode == "RGBA"
    zipped = render.render(cutout, RemovalOptions(output_format="zip"))
    archive = zipfile.ZipFile(io.BytesIO(zipped.body))
    alpha = np.asarray(Image.open(io.BytesIO(archive.read("alpha.png"))))
    assert np.array_equal(alpha, cutout.alpha)
    with pytest.raises(encode.EncodeError):
        encode.webp(np.zeros((2, encode.WEBP_MAX_SIDE + 1, 3), np.uint8))
