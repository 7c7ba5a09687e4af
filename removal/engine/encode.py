"""Arrays to image bytes: PNG, JPEG, Delta PNG and 8-bit mask PNG.

PNGs are written by OpenCV's libpng with the Sub filter and zlib's run-length strategy at a
low level: on cut-outs (large runs of transparent pixels, smooth colour elsewhere) this is
several times faster than Pillow's adaptive filter at level 6, for a file only a few per cent
larger (numbers in docs/BENCHMARKS.md). `optimize` is never used on a request.
"""

import io

import cv2
import numpy as np
from PIL import Image

PNG_LEVEL = 1
_PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    PNG_LEVEL,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_SUB,
]


class EncodeError(RuntimeError):
    pass


def _imencode_png(arr: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(".png", arr, _PNG_PARAMS if params is None else params)
    if not ok:
        raise EncodeError("PNG encoding failed")
    return buf.tobytes()


def png_params(level: int = PNG_LEVEL, rle: bool = True, sub_filter: bool = True) -> list[int]:
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(level)]
    if rle:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if sub_filter:
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
    return params


def png(pixels: np.ndarray, params: list[int] | None = None) -> bytes:
    """uint8 HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) -> PNG bytes."""
    if pixels.dtype != np.uint8:
        raise EncodeError(f"PNG needs uint8 pixels, not {pixels.dtype}")
    if pixels.ndim == 2:
        return _imencode_png(pixels, params)
    if pixels.shape[2] == 3:
        return _imencode_png(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), params)
    if pixels.shape[2] == 4:
        return _imencode_png(cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA), params)
    raise EncodeError(f"PNG needs 1, 3 or 4 channels, not {pixels.shape}")


def _above(alpha: np.ndarray, level: int) -> np.ndarray:
    """A uint8 mask, 255 where alpha > level."""
    return cv2.threshold(alpha, level, 255, cv2.THRESH_BINARY)[1]


def png_rgba(rgb: np.ndarray, alpha: np.ndarray, params: list[int] | None = None) -> bytes:
    """A cut-out as RGBA PNG. Fully transparent pixels are written as 0,0,0,0 (as rembg does):
    their colour is invisible and zeros compress far better."""
    bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    visible = _above(alpha, 0)
    bgra = cv2.bitwise_and(bgra, bgra, mask=visible)
    cv2.mixChannels([alpha], [bgra], [0, 3])
    return _imencode_png(bgra, params)


def mask_png(alpha: np.ndarray, params: list[int] | None = None) -> bytes:
    """An 8-bit single-channel PNG of the alpha (255 = foreground)."""
    return png(np.ascontiguousarray(alpha, dtype=np.uint8), params)


def jpeg(rgb: np.ndarray, quality: int = 75) -> bytes:
    """Baseline JPEG (4:2:0 like most encoders' default), never optimised."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def delta_bgra(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The Delta PNG's pixels (in OpenCV's BGRA order) for an image and its alpha, both at the
    oriented input's full size.

    Background (alpha 0) -> 0x00000000, opaque foreground (alpha 255) -> 0x00FFFFFF (transparent
    white), partially transparent pixels -> their colour and alpha.
    """
    # 255 where 0 < alpha < 255 (threshold, not compare/inRange: those take a 1x1 array for
    # a scalar)
    partial = cv2.bitwise_xor(_above(alpha, 0), _above(alpha, 254))
    bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    bgra = cv2.bitwise_and(bgra, bgra, mask=partial)
    bgra[alpha == 255] = (255, 255, 255, 0)
    part_alpha = cv2.bitwise_and(alpha, partial)
    cv2.mixChannels([part_alpha], [bgra], [0, 3])
    return bgra


def delta_png(rgb: np.ndarray, alpha: np.ndarray, params: list[int] | None = None) -> bytes:
    """Delta PNG (see ../shared/spec/pixian-v2.md) of `rgb` (HxWx3) and `alpha` (HxW)."""
    if rgb.shape[:2] != alpha.shape[:2]:
        raise EncodeError(f"image {rgb.shape[:2]} and alpha {alpha.shape[:2]} differ in size")
    return _imencode_png(delta_bgra(rgb, alpha), params)


def rebuild_from_delta(delta_rgba: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """What a client does with a Delta PNG (RGBA order) and the input: the full RGBA result.

    Used by tests and benchmarks to check the format; mirrors static/js/delta-png.js.
    """
    out = delta_rgba.copy()
    keep_input = (delta_rgba[:, :, 3] == 0) & (delta_rgba[:, :, 0] == 255)
    out[keep_input, :3] = rgb[keep_input]
    out[keep_input, 3] = 255
    return out
