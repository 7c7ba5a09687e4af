"""The local engine end to end on real photos: formats, sizes, boxes, Delta PNG rebuild."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from removal.engine import encode
from removal.engine.types import RemovalOptions


def _open(body: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


def test_png_output_keeps_the_subject_and_clears_the_background(engine, astronaut_png):
    result = engine.remove(astronaut_png, RemovalOptions(output_format="png"))
    im = _open(result.body)
    assert result.content_type == "image/png"
    assert im.mode == "RGBA" and im.size == (512, 512)
    alpha = np.asarray(im)[:, :, 3]
    # The astronaut's face (centre top) is foreground, the white studio wall (top right) not.
    assert alpha[120:160, 200:240].mean() > 240
    assert alpha[10:60, 440:500].mean() < 15
    assert result.input_size == (512, 512) and result.result_size == (512, 512)
    box = result.input_foreground
    assert 0 < box.width <= 512 and 0 < box.height <= 512


def test_auto_is_png_without_a_colour_and_jpeg_with_one(engine, chelsea_jpeg):
    plain = engine.remove(chelsea_jpeg, RemovalOptions())
    coloured = engine.remove(chelsea_jpeg, RemovalOptions(background_color=(255, 0, 0)))
    assert plain.content_type == "image/png"
    assert coloured.content_type == "image/jpeg"
    assert _open(coloured.body).mode == "RGB"


def test_delta_png_rebuilds_to_the_png_result(engine, astronaut_png):
    png = np.asarray(_open(engine.remove(astronaut_png, RemovalOptions(output_format="png")).body))
    delta_result = engine.remove(astronaut_png, RemovalOptions(output_format="delta_png"))
    delta = np.asarray(_open(delta_result.body))
    values = {tuple(p) for p in delta[delta[:, :, 3] == 0].reshape(-1, 4)[::97]}
    assert values <= {(0, 0, 0, 0), (255, 255, 255, 0)}
    rebuilt = encode.rebuild_from_delta(delta, skdata.astronaut())
    assert np.array_equal(rebuilt[:, :, 3], png[:, :, 3])
    visible = png[:, :, 3] > 0
    assert np.array_equal(rebuilt[:, :, :3][visible], png[:, :, :3][visible])


def test_delta_png_is_at_full_size_when_max_pixels_scales_down(engine, astronaut_png):
    options = RemovalOptions(output_format="delta_png", max_pixels=128 * 128)
    result = engine.remove(astronaut_png, options)
    assert _open(result.body).size == (512, 512)
    assert result.result_size == (512, 512) and result.input_size == (512, 512)
    png = engine.remove(astronaut_png, RemovalOptions(output_format="png", max_pixels=128 * 128))
    assert _open(png.body).size == (128, 128)
    assert png.input_size == (512, 512)


def test_mask_output_is_an_8_bit_grey_png(engine, chelsea_jpeg):
    result = engine.remove(chelsea_jpeg, RemovalOptions(output_format="mask"))
    im = _open(result.body)
    assert im.mode == "L" and im.size == (451, 300)
    mask = np.asarray(im)
    assert mask[150, 225] == 255  # the cat's body
    assert result.result_foreground.width > 200


def test_test_mode_is_accepted(engine, chelsea_jpeg):
    result = engine.remove(chelsea_jpeg, RemovalOptions(test=True, output_format="png"))
    assert _open(result.body).size == (451, 300)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "delta_png", "mask"])
def test_render_reuses_one_analysis(engine, chelsea_jpeg, fmt):
    cutout = engine.analyse(chelsea_jpeg, RemovalOptions())
    result = engine.render(cutout, RemovalOptions(output_format=fmt))
    assert _open(result.body).size == (451, 300)
    assert result.input_foreground == engine.render(cutout, RemovalOptions()).input_foreground


DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"


def test_result_alpha_never_exceeds_the_inputs_alpha(engine):
    body = (DATA / "alpha.png").read_bytes()
    source_alpha = np.asarray(Image.open(DATA / "alpha.png"))[:, :, 3]
    for fmt in ("png", "mask"):
        result = engine.remove(body, RemovalOptions(output_format=fmt))
        alpha = np.asarray(_open(result.body))
        alpha = alpha[:, :, 3] if alpha.ndim == 3 else alpha
        assert (alpha <= source_alpha).all()
        assert (alpha[source_alpha == 0] == 0).all()


def test_oriented_input_reports_orientation_and_oriented_sizes(engine):
    result = engine.remove((DATA / "orientation_6.jpg").read_bytes(), RemovalOptions())
    assert result.orientation == 6
    assert result.input_size == (60, 40) and result.result_size == (60, 40)
    assert _open(result.body).size == (60, 40)
    delta = engine.remove(
        (DATA / "orientation_6.jpg").read_bytes(), RemovalOptions(output_format="delta_png")
    )
    assert _open(delta.body).size == (60, 40)


@pytest.mark.parametrize("name", ["tiny_2x2.png", "strip_2x40.png", "palette_transparency.png"])
def test_odd_inputs_are_processed(engine, name):
    for fmt in ("png", "jpeg", "delta_png", "mask"):
        result = engine.remove((DATA / name).read_bytes(), RemovalOptions(output_format=fmt))
        assert _open(result.body).size == result.result_size


def test_max_pixels_bounds_the_processing_size(engine, chelsea_jpeg):
    result = engine.remove(chelsea_jpeg, RemovalOptions(max_pixels=100))
    width, height = result.result_size
    assert width * height <= 100 and width > height
    assert result.input_size == (451, 300)
