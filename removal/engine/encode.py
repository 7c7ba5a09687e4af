"""Arrays to image bytes: PNG, JPEG, WebP, Delta PNG, 8-bit mask PNG and remove.bg's ZIP.

PNGs are written here rather than by Pillow or libpng: rows get PNG's Up filter (one
vectorised subtraction) and are deflated by zlib-ng at level 3, in slices of about a megabyte
filtered and compressed in parallel (numpy and zlib release the GIL) and joined into one zlib
stream. On cut-outs that is about 8x less CPU than Pillow's default level-6 PNG for a file of
about the same size; the Delta PNG (mostly runs) is cheaper still. The sweep of filters,
strategies and levels behind this is in docs/BENCHMARKS.md. `optimize` is never used.
"""

import io
import os
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from PIL import Image

try:  # zlib-ng: same stream format as zlib, 2-6x faster at the levels we use
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover - the dependency is declared; plain zlib still works
    _deflate = zlib

# Chosen by measurement (docs/BENCHMARKS.md, `bench/engine_speed.py --png-sweep`): with the Up
# filter, zlib-ng's default strategy at level 3 writes an RGBA cut-out about as small as
# Pillow's level 6 for an eighth of its CPU; Paeth, RLE and other levels were worse trades.
PNG_LEVEL = 3
PNG_STRATEGY = _deflate.Z_DEFAULT_STRATEGY
# Rows are filtered and deflated in slices of about this many bytes, in parallel.
SLICE_BYTES = 1 << 20
_WORKERS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, GA, RGB, RGBA)


class EncodeError(RuntimeError):
    pass


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="cutout-png")
    return _pool


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _up_rows(flat: np.ndarray, start: int, stop: int) -> np.ndarray:
    """PNG scanlines `start:stop` of `flat` (H x row bytes) with the Up filter (type 2): each
    row minus the row above, mod 256, prefixed by its filter byte."""
    out = np.empty((stop - start, flat.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 2
    first = start
    if start == 0:
        out[0, 1:] = flat[0]
        first = 1
    np.subtract(flat[first:stop], flat[first - 1 : stop - 1], out=out[first - start :, 1:])
    return out


def _adler32_combine(first: int, second: int, second_len: int) -> int:
    """zlib's adler32_combine: the Adler-32 of A + B from those of A and B and len(B)."""
    base = 65521
    rem = second_len % base
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (second & 0xFFFF) + base - 1
    sum2 += ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + base - rem
    sum1 %= base
    sum2 %= base
    return sum1 | (sum2 << 16)


def _deflate_slice(
    flat: np.ndarray, start: int, stop: int, level: int, last: bool
) -> tuple[bytes, int, int]:
    """Filter and deflate rows `start:stop`: (raw deflate bytes, Adler-32, length filtered).

    Raw deflate (wbits -15); all slices but the last end on a byte-aligned sync flush, so
    the slices concatenate into one valid stream."""
    rows = memoryview(_up_rows(flat, start, stop)).cast("B")
    compressor = _deflate.compressobj(level, _deflate.DEFLATED, -15, 9, PNG_STRATEGY)
    body = compressor.compress(rows)
    body += compressor.flush(_deflate.Z_FINISH if last else _deflate.Z_SYNC_FLUSH)
    return body, zlib.adler32(rows), rows.nbytes


def _zlib_stream(flat: np.ndarray, level: int) -> bytes:
    """The IDAT zlib stream of `flat` (H x row bytes), filtered and deflated in row slices of
    about SLICE_BYTES on the thread pool (numpy and zlib release the GIL; small slices also
    bound the filter's temporary memory)."""
    height, row_bytes = flat.shape[0], flat.shape[1] + 1
    rows_per_slice = max(1, SLICE_BYTES // row_bytes)
    bounds = list(range(0, height, rows_per_slice)) + [height]
    jobs = [(bounds[i], bounds[i + 1], i == len(bounds) - 2) for i in range(len(bounds) - 1)]
    if len(jobs) == 1 or _WORKERS == 1:
        parts = [_deflate_slice(flat, a, b, level, last) for a, b, last in jobs]
    else:
        parts = list(
            _executor().map(lambda job: _deflate_slice(flat, job[0], job[1], level, job[2]), jobs)
        )
    adler = 1
    for _body, part_adler, length in parts:
        adler = _adler32_combine(adler, part_adler, length)
    return b"\x78\x01" + b"".join(part[0] for part in parts) + struct.pack(">I", adler)


def png(pixels: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """uint8 HxW (grey), HxWx2 (grey+alpha), HxWx3 (RGB) or HxWx4 (RGBA) -> PNG bytes."""
    if pixels.dtype != np.uint8:
        raise EncodeError(f"PNG needs uint8 pixels, not {pixels.dtype}")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.ndim not in (2, 3) or channels not in _COLOUR_TYPES:
        raise EncodeError(f"PNG needs 1 to 4 channels, not {pixels.shape}")
    height, width = pixels.shape[:2]
    if height < 1 or width < 1:
        raise EncodeError(f"cannot write an empty {width} x {height} PNG")
    pixels = np.ascontiguousarray(pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    flat = pixels.reshape(height, -1)
    idat = _zlib_stream(flat, level)
    return b"".join(
        (_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b""))
    )


# Per-alpha lookups on whole pixels: an RGBA pixel read as one little-endian 32-bit word is
# R | G << 8 | B << 16 | A << 24, so `(rgbx & KEEP[alpha]) | SET[alpha]` builds a pixel in two
# table lookups and two bitwise operations (OpenCV's LUT takes 32-bit tables).
_A = np.arange(256, dtype=np.uint32)
_RGB_BITS = np.uint32(0x00FFFFFF)
_WHITE_CLEAR = np.uint32(int.from_bytes(bytes((255, 255, 255, 0)), "little"))


def _table(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint32).view(np.int32).reshape(256, 1)


# Cut-out: colour where visible, zero where alpha is 0; alpha as is.
_CUTOUT_KEEP = _table(np.where(_A > 0, _RGB_BITS, 0))
_CUTOUT_SET = _table(_A << 24)
# Delta PNG: colour and alpha where 0 < alpha < 255; transparent white where 255; zero where 0.
_PARTIAL = (_A > 0) & (_A < 255)
_DELTA_KEEP = _table(np.where(_PARTIAL, _RGB_BITS, 0))
_DELTA_SET = _table(np.where(_PARTIAL, _A << 24, np.where(_A == 255, _WHITE_CLEAR, 0)))


def _compose_words(
    rgb: np.ndarray, alpha: np.ndarray, keep: np.ndarray, add: np.ndarray
) -> np.ndarray:
    if np.little_endian is False:  # pragma: no cover - every platform we run on
        raise EncodeError("the pixel lookups assume a little-endian machine")
    if rgb.shape[:2] != alpha.shape[:2]:
        raise EncodeError(f"image {rgb.shape[:2]} and alpha {alpha.shape[:2]} differ in size")
    alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    rgba = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2RGBA)
    words = rgba.view(np.int32).reshape(alpha.shape)
    cv2.bitwise_and(words, cv2.LUT(alpha, keep).reshape(alpha.shape), dst=words)
    cv2.bitwise_or(words, cv2.LUT(alpha, add).reshape(alpha.shape), dst=words)
    return rgba


def rgba_cutout(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA pixels of a cut-out, fully transparent pixels as 0,0,0,0 (as rembg writes them):
    their colour is invisible and zeros compress far better."""
    return _compose_words(rgb, alpha, _CUTOUT_KEEP, _CUTOUT_SET)


def png_rgba(rgb: np.ndarray, alpha: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """A cut-out as an RGBA PNG (see `rgba_cutout`)."""
    return png(rgba_cutout(rgb, alpha), level)


def mask_png(alpha: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """An 8-bit single-channel PNG of the alpha (255 = foreground)."""
    return png(np.ascontiguousarray(alpha, dtype=np.uint8), level)


def jpeg(rgb: np.ndarray, quality: int = 75) -> bytes:
    """Baseline JPEG (4:2:0 like most encoders' default), never optimised."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def delta_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The Delta PNG's pixels (RGBA) for an image and its alpha, both at the oriented input's
    full size: background (alpha 0) -> 0x00000000, opaque foreground (alpha 255) -> 0x00FFFFFF
    (transparent white), partially transparent pixels -> their colour and alpha."""
    return _compose_words(rgb, alpha, _DELTA_KEEP, _DELTA_SET)


def delta_bgra(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`delta_rgba` in OpenCV's BGRA channel order."""
    return cv2.cvtColor(delta_rgba(rgb, alpha), cv2.COLOR_RGBA2BGRA)


def delta_png(rgb: np.ndarray, alpha: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """Delta PNG (see ../shared/spec/pixian-v2.md) of `rgb` (HxWx3) and `alpha` (HxW)."""
    return png(delta_rgba(rgb, alpha), level)


def rebuild_from_delta(delta_rgba: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """What a client does with a Delta PNG (RGBA order) and the input: the full RGBA result.

    Used by tests and benchmarks to check the format; mirrors static/js/delta-png.js.
    """
    out = delta_rgba.copy()
    keep_input = (delta_rgba[:, :, 3] == 0) & (delta_rgba[:, :, 0] == 255)
    out[keep_input, :3] = rgb[keep_input]
    out[keep_input, 3] = 255
    return out


# libwebp's limit on either side.
WEBP_MAX_SIDE = 16383


def webp(pixels: np.ndarray, quality: int = 90) -> bytes:
    """HxWx3 (RGB) or HxWx4 (RGBA) uint8 -> lossy WebP with an exact (lossless) alpha plane.

    Raises EncodeError past WEBP_MAX_SIDE pixels per side (the format cannot hold more)."""
    height, width = pixels.shape[:2]
    if max(width, height) > WEBP_MAX_SIDE:
        raise EncodeError(f"WebP holds at most {WEBP_MAX_SIDE} px per side, not {width} x {height}")
    mode = "RGBA" if pixels.ndim == 3 and pixels.shape[2] == 4 else "RGB"
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode).save(
        buf, "WEBP", quality=int(quality), alpha_quality=100, method=2, exact=False
    )
    return buf.getvalue()


def zip_color_alpha(rgb: np.ndarray, alpha: np.ndarray, quality: int = 90) -> bytes:
    """remove.bg's `format=zip`: `color.jpg` (the colours, black where alpha is 0) and
    `alpha.png` (the 8-bit mask), stored uncompressed (both are compressed already)."""
    colour = rgba_cutout(rgb, alpha)[:, :, :3]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("color.jpg", jpeg(colour, quality))
        archive.writestr("alpha.png", mask_png(alpha))
    return buf.getvalue()
