"""Bytes in, an oriented 8-bit RGB array (and the input's own alpha, if any) out.

`probe()` reads only the header: format, size, orientation, and refuses what the engine will
not decode (empty, unreadable, unsupported, more than 32 MP, sides over 1000:1, over the
decoding budget of removal/engine/budget.py) before any pixel is touched. `decode()` then
decodes the first frame, converts CMYK, palette, 16-bit, grey and float modes to 8-bit RGB,
keeps any alpha channel separately, and applies the EXIF orientation.

No file, however broken, gets past here as anything but a RemovalError: codecs (libjpeg,
libtiff, libheif, libwebp, Pillow's own parsers) raise all sorts of exceptions on bad data.
"""

import io
import logging
import warnings
from dataclasses import dataclass
from struct import error as struct_error

import cv2
import numpy as np
import pillow_heif
from PIL import Image, UnidentifiedImageError

from removal.errors import (
    ASPECT_TOO_EXTREME,
    EMPTY_IMAGE,
    FILE_TOO_LARGE,
    SIDE_TOO_LONG,
    TOO_MANY_PIXELS,
    TOO_SMALL,
    UNREADABLE_IMAGE,
    UNSUPPORTED_FORMAT,
    RemovalError,
)

from . import budget

logger = logging.getLogger(__name__)
pillow_heif.register_heif_opener()
# Pillow warns above ~89 MP and refuses above ~179 MP; we refuse at 32 MP from the header anyway.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

MAX_INPUT_PIXELS = 32_000_000
# A 1-pixel-wide image breaks the edge refinement (and has no subject to find).
MIN_SIDE = 2
# Longer side over shorter: past this the work of loops over the image's outline (watermark
# lattice, tiling, resizing) grows with the ratio, and no photo or scan is that thin.
MAX_ASPECT = 1000
# What codecs raise on bad data, beside the ones handled by name (a last `Exception` catches
# the rest, logged, so each new kind is seen and added here or fixed at its source).
_CODEC_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    RuntimeError,  # libheif (pillow-heif) on a corrupt HEIC
    IndexError,
    KeyError,
    TypeError,
    ArithmeticError,
    AttributeError,
    AssertionError,
    struct_error,
)
# Pillow format names we accept (MPO: the multi-picture JPEG many phones write).
ACCEPTED_FORMATS = {"BMP", "DIB", "GIF", "JPEG", "MPO", "PNG", "TIFF", "WEBP", "HEIF"}
# Known image containers we do not read: an unsupported format rather than a broken file.
_OTHER_MAGIC = (
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG"),
    (b"8BPS", "PSD"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"qoif", "QOI"),
)
_ORIENTATION_TAG = 0x0112
# Orientation -> the Pillow transpose that undoes it.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ImageBounds:
    """What a wire format accepts, checked by `probe` from the header, each refusal with the
    neutral code that the format renders as its own: a side under `min_side` (1009), a side
    over `max_side` (1013), more than `max_pixels` (1008), a file over `max_bytes` (1014), a
    format outside `formats` (1007; Pillow's names, None: every format `decode` reads), the
    long side over `max_aspect` times the short one (1012)."""

    min_side: int = MIN_SIDE
    max_aspect: int = MAX_ASPECT
    max_side: int | None = None
    max_pixels: int = MAX_INPUT_PIXELS
    max_bytes: int | None = None
    formats: frozenset[str] | None = None


DEFAULT_BOUNDS = ImageBounds()


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int  # as stored, before orientation
    height: int
    orientation: int  # EXIF tag, 1-8 (1 when absent or invalid)
    mode: str
    frames: int = 1

    @property
    def oriented_size(self) -> tuple[int, int]:
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass
class Decoded:
    info: ImageInfo
    rgb: np.ndarray  # oriented, HxWx3 uint8, C-contiguous
    alpha: np.ndarray | None  # oriented HxW uint8, None when the input is fully opaque


def _unsupported_or_unreadable(data: bytes) -> RemovalError:
    head = data[:16].lstrip()
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return RemovalError(
                UNSUPPORTED_FORMAT,
                f"Unsupported image format ({name}): use BMP, GIF, JPEG, PNG, TIFF, WebP or HEIC.",
            )
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return RemovalError(
            UNSUPPORTED_FORMAT,
            "Unsupported image format (AVIF): use BMP, GIF, JPEG, PNG, TIFF, WebP or HEIC.",
        )
    return RemovalError(
        UNREADABLE_IMAGE, "Failed to read the supplied image: it is not an image file."
    )


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not fail the image
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _unreadable(exc: BaseException) -> RemovalError:
    """Cutout's own sentence: the codec's wording goes to the debug log, not to the client."""
    logger.debug("unreadable image: %r", exc)
    return RemovalError(
        UNREADABLE_IMAGE, "Failed to read the supplied image: the file is damaged or incomplete."
    )


def _open(data: bytes) -> tuple[Image.Image, ImageInfo]:
    if not data:
        raise RemovalError(EMPTY_IMAGE)
    budget.check_structure(data)  # before any codec: Image.open already does work per strip
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise RemovalError(TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise _unsupported_or_unreadable(data) from None
    except _CODEC_ERRORS as exc:
        raise _unreadable(exc) from None
    except Exception as exc:
        logger.exception("image codec failed to open a file")
        raise _unreadable(exc) from None
    try:
        info = _read_info(im)
    except RemovalError:
        im.close()
        raise
    except _CODEC_ERRORS as exc:
        im.close()
        raise _unreadable(exc) from None
    except Exception as exc:
        im.close()
        logger.exception("image codec failed to read a header")
        raise _unreadable(exc) from None
    return im, info


def _read_info(im: Image.Image) -> ImageInfo:
    """The header's facts; counting frames walks the file (GIF: every frame's blocks), so it
    is bounded by budget.check_structure and may raise on a broken file."""
    fmt = (im.format or "").upper()
    if fmt not in ACCEPTED_FORMATS:
        raise RemovalError(
            UNSUPPORTED_FORMAT,
            f"Unsupported image format ({fmt}): use BMP, GIF, JPEG, PNG, TIFF, WebP or HEIC.",
        )
    width, height = im.size
    frames = int(getattr(im, "n_frames", 1))
    budget.check_frames(frames)
    return ImageInfo(
        format="HEIC" if fmt == "HEIF" else ("JPEG" if fmt == "MPO" else fmt),
        width=width,
        height=height,
        orientation=_orientation(im),
        mode=im.mode,
        frames=frames,
    )


def _check_bounds(data: bytes, info: ImageInfo, bounds: ImageBounds) -> None:
    if bounds.max_bytes is not None and len(data) > bounds.max_bytes:
        raise RemovalError(
            FILE_TOO_LARGE,
            f"The image file is {len(data):,} bytes; at most {bounds.max_bytes:,} are accepted.",
        )
    if bounds.formats is not None and info.format not in bounds.formats:
        accepted = ", ".join(sorted(bounds.formats))
        raise RemovalError(
            UNSUPPORTED_FORMAT, f"Unsupported image format ({info.format}): use {accepted}."
        )
    width, height = info.width, info.height
    if min(width, height) < bounds.min_side:
        raise RemovalError(
            TOO_SMALL,
            f"The image is {width} x {height} pixels; both sides must be at least "
            f"{bounds.min_side}.",
        )
    if bounds.max_side is not None and max(width, height) > bounds.max_side:
        raise RemovalError(
            SIDE_TOO_LONG,
            f"The image is {width} x {height} pixels; no side may be longer than "
            f"{bounds.max_side}.",
        )
    if width * height > bounds.max_pixels:
        raise RemovalError(
            TOO_MANY_PIXELS,
            f"The image has {width} x {height} = {width * height:,} pixels; "
            f"at most {bounds.max_pixels:,} are accepted.",
        )
    if max(width, height) > bounds.max_aspect * min(width, height):
        raise RemovalError(
            ASPECT_TOO_EXTREME,
            f"The image is {width} x {height} pixels; the long side may be at most "
            f"{bounds.max_aspect} times the short one.",
        )
    budget.check_decoded_size(width, height, info.mode)


def probe(data: bytes, bounds: ImageBounds = DEFAULT_BOUNDS) -> ImageInfo:
    """Header-only check: raises RemovalError (1005-1009, 1012-1018) for what `decode` would
    refuse and for what is outside the caller's `bounds` (tighter than the default). Only a
    codec failure past the header (corrupt pixel data) is left for `decode` (1006)."""
    im, info = _open(data)
    im.close()
    _check_bounds(data, info, bounds)
    return info


def _to_8bit(arr: np.ndarray) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float plane to uint8 by its nominal range."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        peak = 1.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 255.0
        return (np.clip(np.nan_to_num(arr), 0, peak) * (255.0 / peak) + 0.5).astype(np.uint8)
    peak = int(arr.max(initial=0))
    shift = 8 if peak > 255 else 0
    if peak > 65535:  # 32-bit integer data: use its own range
        shift = max(0, int(peak).bit_length() - 8)
    return (arr >> shift).astype(np.uint8) if shift else arr.astype(np.uint8)


def _convert(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """The loaded frame as (RGB uint8, alpha uint8 or None)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = _to_8bit(np.asarray(im))
        return np.repeat(grey[:, :, None], 3, axis=2), None
    if mode == "P":
        has_alpha = "transparency" in im.info or im.palette.mode == "RGBA"
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    elif mode in ("L", "1", "CMYK", "YCbCr", "LAB", "HSV", "I;16S"):
        im = im.convert("RGB")
        mode = "RGB"
    elif mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
        mode = im.mode
    if mode == "RGB":
        return np.asarray(im), None
    rgba = np.asarray(im)
    alpha = rgba[:, :, 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[:, :, :3]), None
    return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(alpha)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Undo EXIF orientation `orientation` (OpenCV's flips and rotations: cache-friendly)."""
    if orientation == 1:
        return arr
    if orientation == 2:
        return cv2.flip(arr, 1)
    if orientation == 3:
        return cv2.rotate(arr, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(arr, 0)
    if orientation == 5:
        return cv2.transpose(arr)
    if orientation == 6:
        return cv2.rotate(arr, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(arr), -1)
    return cv2.rotate(arr, cv2.ROTATE_90_COUNTERCLOCKWISE)  # 8


def _jpeg_with_opencv(data: bytes, info: ImageInfo) -> np.ndarray | None:
    """A colour or grey JPEG that ends cleanly, decoded straight to RGB by OpenCV's
    libjpeg-turbo (about half Pillow's CPU: no 4-byte intermediate, no copy); None when
    Pillow should decode it instead (CMYK, truncated, anything unexpected)."""
    if info.format != "JPEG" or info.mode not in ("RGB", "L"):
        return None
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None  # truncated (OpenCV would fill in grey): let Pillow refuse it
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        rgb = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        return None  # Pillow decodes it, or says what is wrong with it
    if rgb is None or rgb.shape != (info.height, info.width, 3):
        return None
    return rgb


def decode(data: bytes) -> Decoded:
    """Decode the first frame to oriented RGB (+ alpha). Raises RemovalError on bad input."""
    im, info = _open(data)
    try:
        _check_bounds(data, info, DEFAULT_BOUNDS)
    except RemovalError:
        im.close()
        raise
    rgb = _jpeg_with_opencv(data, info)
    if rgb is not None:
        im.close()
        return Decoded(info=info, rgb=_orient(rgb, info.orientation), alpha=None)
    try:
        try:
            if info.frames > 1:
                im.seek(0)
            im.load()
            rgb, alpha = _convert(im)
        except MemoryError:
            raise RemovalError(TOO_MANY_PIXELS) from None
        except _CODEC_ERRORS as exc:
            raise _unreadable(exc) from None
        except Exception as exc:
            logger.exception("image codec failed to decode a file")
            raise _unreadable(exc) from None
    finally:
        im.close()
    if not rgb.flags.c_contiguous:
        rgb = np.ascontiguousarray(rgb)
    rgb = _orient(rgb, info.orientation)
    if alpha is not None:
        alpha = _orient(alpha, info.orientation)
    return Decoded(info=info, rgb=rgb, alpha=alpha)
