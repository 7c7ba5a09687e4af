"""Arrays to image bytes: PNG, JPEG, Delta PNG and 8-bit mask PNG.

PNGs are written here rather than by Pillow or libpng: each row gets PNG's "Up" filter (one
vectorised subtraction), and the filtered rows are deflated with zlib-ng's run-length strategy
in a few slices compressed in parallel (zlib releases the GIL), joined into one zlib stream.
On cut-outs (long transparent runs, photo texture elsewhere) that is 10-20x less CPU than
Pillow's default level-6 PNG for a file of about the same size, and the Delta PNG (mostly
runs) costs a few tens of milliseconds at 12 MP. Numbers and the level sweep behind
`PNG_LEVEL` are in docs/BENCHMARKS.md. `optimize` is never used on a request.
"""

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from PIL import Image

try:  # zlib-ng: same stream format as zlib, 2-6x faster at the levels we use
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover - the dependency is declared; plain zlib still works
    _deflate = zlib

# Measured (docs/BENCHMARKS.md): with the RLE strategy the level barely changes size or time.
PNG_LEVEL = 1
PNG_STRATEGY = _deflate.Z_RLE
# Below this many bytes of filtered rows, one slice (threads would cost more than they save).
PARALLEL_MIN_BYTES = 2 << 20
_SLICES_PER_WORKER = 2
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


def _filtered_rows(pixels: np.ndarray) -> np.ndarray:
    """PNG scanlines with the Up filter (type 2): each row minus the row above, mod 256."""
    height = pixels.shape[0]
    flat = pixels.reshape(height, -1)
    raw = np.empty((height, flat.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 2
    raw[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=raw[1:, 1:])
    return raw


def _deflate_slice(data: memoryview, level: int, last: bool) -> bytes:
    # Raw deflate (wbits -15); all but the last slice end on a byte-aligned sync flush, so
    # the slices concatenate into one valid stream.
    compressor = _deflate.compressobj(level, _deflate.DEFLATED, -15, 9, PNG_STRATEGY)
    body = compressor.compress(data)
    return body + compressor.flush(_deflate.Z_FINISH if last else _deflate.Z_SYNC_FLUSH)


def _zlib_stream(raw: np.ndarray, level: int) -> bytes:
    data = memoryview(raw).cast("B")
    rows = raw.shape[0]
    slices = 1
    if raw.nbytes >= PARALLEL_MIN_BYTES and _WORKERS > 1:
        slices = min(rows, _WORKERS * _SLICES_PER_WORKER)
    bounds = [rows * i // slices * raw.shape[1] for i in range(slices + 1)]
    parts = [data[bounds[i] : bounds[i + 1]] for i in range(slices)]
    if slices == 1:
        bodies = [_deflate_slice(parts[0], level, True)]
    else:
        last = slices - 1
        bodies = list(
            _executor().map(lambda i: _deflate_slice(parts[i], level, i == last), range(slices))
        )
    adler = zlib.adler32(data)
    return b"\x78\x01" + b"".join(bodies) + struct.pack(">I", adler)


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
    idat = _zlib_stream(_filtered_rows(pixels), level)
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
