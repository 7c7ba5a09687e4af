"""static/js/delta-png.js in Debian's Chromium: PNG decoding against Pillow, the Delta PNG
rebuild rule, PNG encoding, file sniffing and the browser's EXIF orientation."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from tests.support_browser import JS_BASE64, b64, unb64

pytestmark = pytest.mark.browser

# Runs `body` in the page with the module imported as `m`, `arg` in scope; returns its value.
EVAL = "async (arg) => { const m = await import('/js/delta-png.js');" + JS_BASE64

DECODE = """
  const image = await m.decodePng(fromBase64(arg));
  const {width, height} = image;
  return {width, height, data: toBase64(new Uint8Array(image.data.buffer))};
"""


def run(page, body: str, arg=None):
    return page.evaluate(EVAL + body + "}", arg)


def js_decode(page, png: bytes) -> np.ndarray:
    out = run(page, DECODE, b64(png))
    pixels = np.frombuffer(unb64(out["data"]), np.uint8)
    return pixels.reshape(out["height"], out["width"], 4)


def pillow_rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def photo(size=(97, 61)) -> Image.Image:
    """Odd sizes so that rows of sub-byte pixels and Adam7 passes end mid-byte."""
    return Image.fromarray(data.astronaut()).resize(size)


# --- a reference PNG writer that picks each row's filter, so every type can be tested -------


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filter(kind: int, row: bytes, prev: bytes | None, bpp: int) -> bytes:
    out = bytearray(len(row))
    for i, value in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if prev is not None and i >= bpp else 0
        predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
        out[i] = (value - predictor) & 0xFF
    return bytes([kind]) + bytes(out)


def _pack(samples: np.ndarray, depth: int) -> bytes:
    """One row of samples (1-D) as PNG packs them."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // depth
    padded = np.zeros(-(-len(samples) // per_byte) * per_byte, np.uint8)
    padded[: len(samples)] = samples
    groups = padded.reshape(-1, per_byte).astype(np.uint16)
    shifts = np.arange(per_byte - 1, -1, -1) * depth
    return (groups << shifts).sum(axis=1).astype(np.uint8).tobytes()


def _scanlines(samples: np.ndarray, depth: int, filters, start: int) -> bytes:
    height = samples.shape[0]
    bpp = max(1, samples.shape[2] * depth // 8)
    out, prev = [], None
    for y in range(height):
        row = _pack(samples[y].reshape(-1), depth)
        out.append(_filter(filters[(start + y) % len(filters)], row, prev, bpp))
        prev = row
    return b"".join(out)


ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]


def write_png(
    samples: np.ndarray,
    color_type: int,
    depth: int = 8,
    filters=(0, 1, 2, 3, 4),
    interlace: bool = False,
    palette: bytes | None = None,
    trns: bytes | None = None,
    extra_chunks: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """`samples` is (height, width, channels); `filters` cycle row by row."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    height, width = samples.shape[:2]
    if interlace:
        parts, row = [], 0
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                parts.append(_scanlines(sub, depth, filters, row))
                row += sub.shape[0]
        raw = b"".join(parts)
    else:
        raw = _scanlines(samples, depth, filters, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlace))
    chunks = [chunk(b"IHDR", header), *(chunk(k, v) for k, v in extra_chunks)]
    if palette is not None:
        chunks.append(chunk(b"PLTE", palette))
    if trns is not None:
        chunks.append(chunk(b"tRNS", trns))
    # Two IDAT chunks, because decoders must join them.
    z = zlib.compress(raw, 6)
    chunks += [chunk(b"IDAT", z[: len(z) // 2]), chunk(b"IDAT", z[len(z) // 2 :])]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + chunk(b"IEND", b"")


def filter_types(png: bytes) -> set[int]:
    """The filter types used by a non-interlaced PNG's rows."""
    at, idat = 8, b""
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        if kind == b"IHDR":
            width, height, depth, color_type = struct.unpack(">IIBB", png[at + 8 : at + 18])
        elif kind == b"IDAT":
            idat += png[at + 8 : at + 8 + length]
        at += 12 + length
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row_bytes = -(-width * channels * depth // 8)
    raw = zlib.decompress(idat)
    return {raw[y * (row_bytes + 1)] for y in range(height)}


# --- decoding ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def js(browser, static_server):
    """One page for the whole module: these tests only call pure functions."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{static_server}/blank")
    yield page
    context.close()


def test_decodes_pngs_saved_by_pillow_in_every_mode_exactly(js):
    img = photo()
    rgba = img.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(img.size))
    variants = {
        "RGB": img,
        "RGBA": rgba,
        "L": img.convert("L"),
        "LA": rgba.convert("LA"),
        "P": img.quantize(37),
        "1": img.convert("1"),
    }
    palette_with_alpha = img.quantize(16)
    palette_with_alpha.info["transparency"] = bytes(range(0, 256, 16))
    variants["P+tRNS"] = palette_with_alpha
    used = set()
    for name, image in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        png = buffer.getvalue()
        used |= filter_types(png)
        assert np.array_equal(js_decode(js, png), pillow_rgba(png)), name
    assert used >= {0, 1, 2, 4}  # Pillow never picks Average; the next test covers it


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (3, 4, 0, 2, 1)])
def test_decodes_each_filter_type_in_rgba_and_rgb_exactly(js, filters):
    rgba = np.asarray(photo().convert("RGBA")).copy()
    rgba[..., 3] = np.arange(rgba.shape[1], dtype=np.uint8)[None, :] * 2
    for samples, color_type in ((rgba, 6), (rgba[..., :3], 2)):
        png = write_png(samples, color_type, filters=filters)
        assert filter_types(png) == set(filters)
        expected = pillow_rgba(png)
        assert np.array_equal(expected[..., : samples.shape[2]], samples)
        assert np.array_equal(js_decode(js, png), expected), color_type


@pytest.mark.parametrize("interlace", [False, True])
def test_decodes_grey_palette_low_bit_depths_and_adam7_like_pillow(js, interlace):
    grey = np.asarray(photo().convert("L"))
    cases = []
    for depth in (1, 2, 4, 8):
        cases.append(
            (f"grey{depth}", write_png(grey >> (8 - depth), 0, depth, interlace=interlace))
        )
    grey_alpha = np.dstack([grey, 255 - grey])
    cases.append(("grey+alpha", write_png(grey_alpha, 4, interlace=interlace)))
    palette = bytes(np.random.default_rng(1).integers(0, 256, 3 * 16, dtype=np.uint8))
    for depth in (1, 2, 4, 8):
        indices = (grey.astype(np.int64) >> 4) % (1 << depth)
        trns = bytes([0, 80, 160]) if depth > 1 else None
        png = write_png(indices, 3, depth, interlace=interlace, palette=palette, trns=trns)
        cases.append((f"palette{depth}", png))
    cases.append(("rgba", write_png(np.asarray(photo().convert("RGBA")), 6, interlace=interlace)))
    for name, png in cases:
        assert np.array_equal(js_decode(js, png), pillow_rgba(png)), name


def test_decodes_transparency_keys_and_16_bit_samples(js):
    rgb = np.asarray(photo())
    key = rgb[10, 20]
    png = write_png(rgb, 2, trns=struct.pack(">HHH", *key))
    decoded = js_decode(js, png)
    assert np.array_equal(decoded, pillow_rgba(png))
    assert decoded[10, 20, 3] == 0 and (decoded[..., 3] == 0).sum() == (rgb == key).all(-1).sum()

    wide = np.random.default_rng(2).integers(0, 65536, (13, 11, 4), dtype=np.uint16)
    decoded = js_decode(js, write_png(wide, 6, 16))
    assert np.array_equal(decoded, (wide >> 8).astype(np.uint8))  # high byte, like browsers


@pytest.mark.parametrize(
    "damage",
    ["signature", "crc", "zlib", "truncated", "filter", "empty"],
)
def test_rejects_damaged_pngs_with_a_png_error(js, damage):
    png = bytearray(write_png(np.asarray(photo((8, 8))), 2))
    if damage == "signature":
        png[1] = ord("Q")
    elif damage == "crc":
        png[20] ^= 1  # inside IHDR
    elif damage == "zlib":
        png = bytearray(write_png(np.asarray(photo((8, 8))), 2))
        start = png.index(b"IDAT") + 4
        png[start : start + 2] = b"\x00\x00"  # not a zlib header
        body_end = png.index(b"IDAT") + 4 + struct.unpack(">I", png[start - 8 : start - 4])[0]
        png[body_end : body_end + 4] = struct.pack(">I", zlib.crc32(png[start - 4 : body_end]))
    elif damage == "truncated":
        png = png[: len(png) // 2]
    elif damage == "filter":
        rows = np.asarray(photo((8, 8)))
        png = bytearray(write_png(rows, 2, filters=(0,)))
        raw = bytearray(zlib.decompress(_idat(png)))
        raw[0] = 9
        png = bytearray(_replace_idat(png, zlib.compress(bytes(raw))))
    elif damage == "empty":
        png = bytearray()
    body = """
      try { await m.decodePng(fromBase64(arg)); return "decoded"; }
      catch (error) {
        return error instanceof m.PngError ? "PngError: " + error.message : String(error);
      }
    """
    assert run(js, body, b64(bytes(png))).startswith("PngError: ")


def _idat(png: bytes) -> bytes:
    at = png.index(b"IDAT") - 4
    return b"".join(_chunks(png, b"IDAT", at))


def _chunks(png: bytes, kind: bytes, at: int = 8):
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == kind:
            yield png[at + 8 : at + 8 + length]
        at += 12 + length


def _replace_idat(png: bytes, body: bytes) -> bytes:
    first = png.index(b"IDAT") - 4
    end = png.index(b"IEND") - 4
    chunk = (
        struct.pack(">I", len(body))
        + b"IDAT"
        + body
        + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    )
    return png[:first] + chunk + png[end:]


# --- rebuilding and encoding ----------------------------------------------------------------


def make_delta(original: np.ndarray, alpha: np.ndarray, watermark: np.ndarray) -> np.ndarray:
    """A delta as the spec draws it: background 0x00000000, opaque foreground 0x00FFFFFF,
    soft edges and watermark pixels with their real colour and alpha."""
    delta = np.zeros(original.shape[:2] + (4,), np.uint8)
    soft = (alpha > 0) & (alpha < 255)
    delta[alpha == 255] = (255, 255, 255, 0)
    delta[soft, :3] = original[soft, :3]
    delta[soft, 3] = alpha[soft]
    delta[watermark] = (200, 30, 30, 140)
    return delta


def test_rebuild_takes_transparent_white_from_the_original_and_keeps_the_rest(js):
    original = np.asarray(photo().convert("RGBA")).copy()
    original[..., 3] = 255
    h, w = original.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    distance = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((30 - distance) * 40, 0, 255).astype(np.uint8)
    watermark = (yy % 9 == 0) & (xx > 10)
    delta = make_delta(original, alpha, watermark)
    expected = delta.copy()
    take = (delta[..., 3] == 0) & (delta[..., 0] == 255)
    expected[take, :3] = original[take, :3]
    expected[take, 3] = 255
    assert take.any() and (delta[..., 3] == 0).any() and ((delta[..., 3] % 255) != 0).any()

    body = """
      const [w, h, original, delta] = arg;
      const image = {width: w, height: h, data: new Uint8ClampedArray(fromBase64(original).buffer)};
      const {image: rebuilt, png} = await m.rebuildPng(image, fromBase64(delta));
      return [toBase64(new Uint8Array(rebuilt.data.buffer)), toBase64(png)];
    """
    delta_png = io.BytesIO()
    Image.fromarray(delta, "RGBA").save(delta_png, "PNG")
    pixels, png = run(js, body, [w, h, b64(original.tobytes()), b64(delta_png.getvalue())])
    assert np.array_equal(np.frombuffer(unb64(pixels), np.uint8).reshape(h, w, 4), expected)
    assert np.array_equal(pillow_rgba(unb64(png)), expected)


def test_rebuild_refuses_a_delta_of_another_size(js):
    body = """
      const a = {width: 2, height: 2, data: new Uint8ClampedArray(16)};
      const b = {width: 2, height: 3, data: new Uint8ClampedArray(24)};
      try { m.rebuildCutout(a, b); return "rebuilt"; }
      catch (e) { return e.name + ": " + e.message; }
    """
    assert run(js, body) == "PngError: the delta is 2×3 but the original is 2×2"


@pytest.mark.parametrize("filter_", [0, 1, 2, 3, 4, "adaptive"])
def test_encoded_png_reads_back_in_pillow_with_every_partial_alpha_exact(js, filter_):
    rng = np.random.default_rng(3)
    pixels = np.asarray(photo().convert("RGBA")).copy()
    pixels[..., 3] = rng.integers(0, 256, pixels.shape[:2], dtype=np.uint8)
    h, w = pixels.shape[:2]
    body = """
      const [w, h, pixels, filter] = arg;
      const png = await m.encodePng(
        {width: w, height: h, data: new Uint8ClampedArray(fromBase64(pixels).buffer)}, {filter});
      return toBase64(png);
    """
    png = unb64(run(js, body, [w, h, b64(pixels.tobytes()), filter_]))
    with Image.open(io.BytesIO(png)) as decoded:
        assert decoded.mode == "RGBA" and decoded.size == (w, h)
        assert np.array_equal(np.asarray(decoded), pixels)
    if filter_ != "adaptive":
        assert filter_types(png) == {filter_}


def test_crc32_matches_zlib(js):
    sample = bytes(range(256)) * 3 + b"Cutout"
    assert run(js, "return m.crc32(fromBase64(arg));", b64(sample)) == zlib.crc32(sample)


# --- sniffing and the browser's own decoding ----------------------------------------------


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_sniff_accepts_what_browsers_decode_like_pillow_and_refuses_the_rest(js):
    img = photo((32, 24))
    wide = Image.fromarray(np.full((4, 4), 40000, np.uint16))
    files = {
        "jpeg": (_save(img, "JPEG", exif=_exif(6)), "jpeg", True),
        "cmyk": (_save(img.convert("CMYK"), "JPEG"), "jpeg", False),
        "png": (_save(img, "PNG"), "png", True),
        "png16": (_save(wide, "PNG"), "png", False),
        "webp": (_save(img, "WEBP"), "webp", True),
        "gif": (_save(img, "GIF"), "gif", True),
        "bmp": (_save(img, "BMP"), "bmp", True),
        "tiff": (_save(img, "TIFF"), "tiff", False),
        "heic": (b"\x00\x00\x00\x18ftypheic" + bytes(20), "heic", False),
        "text": (b"hello, world", "unknown", False),
    }
    body = """
      const sniff = ([name, bytes]) => [name, m.sniffImage(fromBase64(bytes))];
      return Object.fromEntries(Object.entries(arg).map(sniff));
    """
    result = run(js, body, {name: b64(content) for name, (content, _, _) in files.items()})
    for name, (_, fmt, rebuildable) in files.items():
        assert (result[name]["format"], result[name]["rebuildable"]) == (fmt, rebuildable), name


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


LOAD = """
  const response = await fetch(arg);
  const image = await m.loadImagePixels(await response.blob());
  const {width, height} = image;
  return {width, height, data: toBase64(new Uint8Array(image.data.buffer))};
"""


def js_load(page, url: str) -> np.ndarray:
    out = run(page, LOAD, url)
    return np.frombuffer(unb64(out["data"]), np.uint8).reshape(out["height"], out["width"], 4)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_browser_applies_exif_orientation_as_pillow_does(js, browser_files, orientation):
    # Asymmetric and wider than tall, so that every one of the 8 orientations looks different.
    img = photo((48, 32))
    jpeg = _save(img, "JPEG", quality=95, exif=_exif(orientation))
    (browser_files / f"orient{orientation}.jpg").write_bytes(jpeg)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(jpeg))).convert("RGBA"))
    pixels = js_load(js, f"/files/orient{orientation}.jpg")
    assert pixels.shape == expected.shape
    assert np.abs(pixels.astype(int) - expected).max() <= 2


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_browser_applies_a_png_exif_orientation_as_pillow_does(js, browser_files, orientation):
    png = _save(photo((48, 32)), "PNG", exif=_exif(orientation))
    (browser_files / f"orient{orientation}.png").write_bytes(png)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(png))).convert("RGBA"))
    assert np.array_equal(js_load(js, f"/files/orient{orientation}.png"), expected)


def test_browser_ignores_png_gamma_and_icc_like_pillow(js, browser_files):
    img = photo((40, 30))
    # gAMA 1.0 and an sRGB chunk would visibly change colours if the browser managed them.
    png = write_png(np.asarray(img), 2, extra_chunks=((b"gAMA", struct.pack(">I", 100000)),))
    (browser_files / "gamma.png").write_bytes(png)
    assert np.array_equal(js_load(js, "/files/gamma.png"), pillow_rgba(png))


def test_browser_decodes_gif_bmp_and_webp_originals_like_pillow(js, browser_files):
    img = photo((40, 30))
    files = {
        "a.gif": _save(img.quantize(64), "GIF"),
        "a.bmp": _save(img, "BMP"),
        "a.webp": _save(img, "WEBP", lossless=True),
        "lossy.webp": _save(img, "WEBP", quality=80),
    }
    report = {}
    for name, content in files.items():
        (browser_files / name).write_bytes(content)
        diff = np.abs(js_load(js, f"/files/{name}").astype(int) - pillow_rgba(content)).max()
        report[name] = int(diff)
    assert report["a.gif"] == report["a.bmp"] == report["a.webp"] == 0, json.dumps(report)
    assert report["lossy.webp"] <= 2, json.dumps(report)
