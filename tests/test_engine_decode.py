"""Decoding: every accepted container and colour model, EXIF orientation, and refusals of bad
input with their codes, all checked before pixels are decoded where the header suffices."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from removal.engine import budget, decode
from removal.errors import RemovalError
from tests.support_hostile import fuzz_crash, gif_with_frames, scan_bomb_jpeg, tiff_claiming_strips

DATA = Path(__file__).resolve().parent / "data"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def upright() -> np.ndarray:
    return np.asarray(Image.open(DATA / "upright.png").convert("RGB")).astype(np.int16)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("tag", range(1, 9))
def test_exif_orientation_is_applied_and_reported(tag):
    decoded = decode.decode(read(f"orientation_{tag}.jpg"))
    assert decoded.info.orientation == tag
    assert decoded.rgb.shape == (40, 60, 3)
    assert decoded.info.oriented_size == (60, 40)
    assert mean_abs_diff(decoded.rgb, upright()) < 4  # JPEG noise only
    # ...and not merely similar: the image flipped left-right is far off.
    assert mean_abs_diff(decoded.rgb[:, ::-1], upright()) > 10


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("photo.bmp", "BMP"),
        ("photo.webp", "WEBP"),
        ("photo.heic", "HEIC"),
        ("multipage.tif", "TIFF"),
        ("upright.png", "PNG"),
        ("orientation_1.jpg", "JPEG"),
    ],
)
def test_each_accepted_container_decodes_to_the_photo(name, fmt):
    decoded = decode.decode(read(name))
    assert decoded.info.format == fmt
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.shape == (40, 60, 3)
    assert decoded.rgb.flags.c_contiguous
    assert mean_abs_diff(decoded.rgb, upright()) < 6  # the first page, not the red one
    assert decoded.alpha is None


def test_animated_gif_uses_the_first_frame():
    decoded = decode.decode(read("animated.gif"))
    assert decoded.info.frames == 2
    assert mean_abs_diff(decoded.rgb, upright()) < 20  # 16-colour palette, not solid red
    assert not (decoded.rgb[:, :, 0] > 200).all()


@pytest.mark.parametrize("name", ["grey.png", "grey.jpg", "grey16.png"])
def test_grey_inputs_become_grey_rgb(name):
    decoded = decode.decode(read(name))
    rgb = decoded.rgb
    assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[:, :, 0], rgb[:, :, 2])
    grey = np.asarray(Image.open(DATA / "upright.png").convert("L"))
    assert mean_abs_diff(rgb[:, :, 0], grey) < 3


def test_16_bit_colour_png_is_scaled_not_clipped():
    decoded = decode.decode(read("rgb16.png"))
    assert mean_abs_diff(decoded.rgb, upright()) < 1.5


def test_cmyk_jpeg_is_converted_to_rgb():
    decoded = decode.decode(read("cmyk.jpg"))
    assert decoded.rgb.shape == (40, 60, 3)
    assert mean_abs_diff(decoded.rgb, upright()) < 8


def test_bilevel_png_decodes():
    decoded = decode.decode(read("bilevel.png"))
    assert set(np.unique(decoded.rgb)) <= {0, 255}


@pytest.mark.parametrize("name", ["alpha.png", "alpha.webp", "grey_alpha.png"])
def test_existing_alpha_is_kept_separately(name):
    decoded = decode.decode(read(name))
    src = np.asarray(Image.open(DATA / "alpha.png"))[:, :, 3]
    assert decoded.alpha is not None
    assert np.array_equal(decoded.alpha, src)


def test_palette_transparency_becomes_alpha():
    decoded = decode.decode(read("palette_transparency.png"))
    palette = Image.open(DATA / "palette_transparency.png")
    transparent = np.asarray(palette) == palette.info["transparency"]
    assert transparent.any()
    assert decoded.alpha is not None
    assert (decoded.alpha[transparent] == 0).all() and (decoded.alpha[~transparent] == 255).all()


@pytest.mark.parametrize("name, size", [("tiny_2x2.png", (2, 2)), ("strip_2x40.png", (2, 40))])
def test_small_images_decode(name, size):
    decoded = decode.decode(read(name))
    assert decoded.info.oriented_size == size
    assert decoded.rgb.shape == (size[1], size[0], 3)


@pytest.mark.parametrize("name", ["tiny_1x1.png", "strip_1x40.png"])
def test_one_pixel_wide_images_are_refused_as_too_small(name):
    with pytest.raises(RemovalError) as info:
        decode.probe(read(name))
    assert info.value.code == 1009


@pytest.mark.parametrize(
    "name, code",
    [
        ("truncated.jpg", 1006),
        ("truncated.png", 1006),
        ("not_an_image.jpg", 1006),
        ("document.pdf", 1007),
    ],
)
def test_unreadable_files_are_refused_with_their_code(name, code):
    with pytest.raises(RemovalError) as info:
        decode.decode(read(name))
    assert info.value.code == code
    assert info.value.status == 400


def test_empty_bytes_are_refused():
    with pytest.raises(RemovalError) as info:
        decode.probe(b"")
    assert info.value.code == 1005


def test_wrong_magic_in_a_known_container_is_refused():
    body = bytearray(read("upright.png"))
    body[1:4] = b"JPG"
    with pytest.raises(RemovalError) as info:
        decode.decode(bytes(body))
    assert info.value.code == 1006


@pytest.mark.parametrize(
    "name", ["bomb_40000x40000.png", "over_cap_6000x6000.png", "jpeg_50mp_header.jpg"]
)
def test_oversized_images_are_refused_from_the_header(name):
    # These files only *declare* their size; decoding them would fail with 1006 (or eat
    # gigabytes), so 1008 proves the refusal happened before any pixel was decoded.
    started = time.perf_counter()
    with pytest.raises(RemovalError) as probed:
        decode.probe(read(name))
    with pytest.raises(RemovalError) as decoded:
        decode.decode(read(name))
    assert probed.value.code == decoded.value.code == 1008
    assert "32,000,000" in decoded.value.message
    assert time.perf_counter() - started < 2


def test_probe_reads_size_and_orientation_without_decoding():
    info = decode.probe(read("orientation_6.jpg"))
    assert (info.width, info.height) == (40, 60)  # as stored
    assert info.oriented_size == (60, 40)
    assert info.orientation == 6 and info.format == "JPEG"


# --- a wire format's own bounds, checked from the header --------------------------------------


def _png_of(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("bounds", "size", "code"),
    [
        (decode.ImageBounds(min_side=128), (200, 100), 1009),
        (decode.ImageBounds(max_side=3000), (3001, 20), 1013),
        (decode.ImageBounds(max_pixels=10_000), (101, 100), 1008),
        (decode.ImageBounds(max_bytes=50), (64, 64), 1014),
        (decode.ImageBounds(formats=frozenset({"JPEG", "WEBP"})), (64, 64), 1007),
    ],
    ids=["short-side", "long-side", "pixels", "bytes", "format"],
)
def test_probe_refuses_what_a_formats_bounds_exclude_with_the_neutral_code(bounds, size, code):
    with pytest.raises(RemovalError) as caught:
        decode.probe(_png_of(size), bounds)
    assert caught.value.code == code


def test_probe_within_a_formats_bounds_reads_the_header_and_names_the_limit():
    bounds = decode.ImageBounds(min_side=128, max_side=3000, formats=frozenset({"PNG"}))
    assert decode.probe(_png_of((3000, 128)), bounds).oriented_size == (3000, 128)
    only_photos = decode.ImageBounds(formats=frozenset({"JPEG", "WEBP"}))
    with pytest.raises(RemovalError, match=r"\(PNG\): use JPEG, WEBP\."):
        decode.probe(_png_of((64, 64)), only_photos)
    with pytest.raises(RemovalError, match="longer than 3000"):
        decode.probe(_png_of((3001, 200)), bounds)


# --- the decoding budget (removal/engine/budget.py) ---------------------------------------------


def test_ordinary_files_are_well_inside_the_budget():
    progressive = io.BytesIO()
    Image.open(DATA / "upright.png").convert("RGB").save(progressive, "JPEG", progressive=True)
    assert 2 <= budget.jpeg_scans(progressive.getvalue()) <= 20
    assert budget.jpeg_scans(read("orientation_6.jpg")) == 1
    assert budget.gif_frames(read("animated.gif"), 1000) == 2
    assert budget.tiff_layout(read("multipage.tif"), 1000)[0] == 2


def test_the_scan_bomb_is_refused_from_its_markers_before_decoding():
    with pytest.raises(RemovalError) as caught:
        decode.decode(scan_bomb_jpeg())
    assert caught.value.code == 1015 and caught.value.status == 400


@pytest.mark.parametrize(
    "frames, refused", [(1000, False), (1001, True)], ids=["at-the-limit", "over"]
)
def test_frames_are_counted_up_to_the_limit(frames, refused):
    image = gif_with_frames(frames)
    if refused:
        with pytest.raises(RemovalError) as caught:
            decode.probe(image)
        assert caught.value.code == 1016
    else:
        assert decode.probe(image).frames == frames


def test_strips_are_counted_from_the_directory_before_pillow_opens_the_file():
    assert decode.decode(tiff_claiming_strips(100)).rgb.shape == (100, 100, 3)
    with pytest.raises(RemovalError) as caught:
        decode.probe(tiff_claiming_strips(250_000))
    assert caught.value.code == 1017


def test_the_decoded_size_is_checked_against_the_budget():
    budget.check_decoded_size(8000, 4000, "RGBA")  # 128,000,000 bytes: the largest accepted
    tight = budget.DecodeBudget(max_decoded_bytes=1000)
    budget.check_decoded_size(10, 25, "RGBA", tight)
    for mode in ("RGBA", "I", "F", "CMYK"):
        with pytest.raises(RemovalError) as caught:
            budget.check_decoded_size(16, 16, mode, tight)
        assert caught.value.code == 1018
    budget.check_decoded_size(16, 16, "I;16", budget.DecodeBudget(max_decoded_bytes=512))


@pytest.mark.parametrize("size", [(2000, 2), (2, 2000)])
def test_an_aspect_ratio_of_1000_is_accepted(size):
    assert decode.probe(encode_png(Image.new("L", size))).width == size[0]


@pytest.mark.parametrize("size", [(2001, 2), (2, 2001)])
def test_an_aspect_ratio_over_1000_is_1012(size):
    with pytest.raises(RemovalError) as caught:
        decode.probe(encode_png(Image.new("L", size)))
    assert caught.value.code == 1012 and "1000" in caught.value.message


def test_a_codec_crash_on_a_header_field_is_1006_not_an_exception():
    with pytest.raises(RemovalError) as caught:
        decode.probe(fuzz_crash("tiff_missing_dimensions.tif"))
    assert caught.value.code == 1006


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
