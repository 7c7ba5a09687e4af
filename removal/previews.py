"""Previews of originals a browser cannot show (HEIC, TIFF, CMYK JPEG): a JPEG of at most
`PREVIEW_PIXELS`, made once at upload from the pixels the engine already decoded, stored with
the upload and purged with it (removal/uploads.py)."""

import io
import math

import numpy as np
from PIL import Image, ImageOps

from removal.engine.decode import ImageInfo

PREVIEW_PIXELS = 1_000_000
PREVIEW_QUALITY = 85
# What every current browser decodes in an <img>, in Pillow's format names; CMYK JPEGs are
# shown with wrong colours by some, so they get a preview too.
BROWSER_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP"})


def needed(info: ImageInfo) -> bool:
    """Whether the page needs a server-made preview to show this original."""
    return info.format not in BROWSER_FORMATS or info.mode == "CMYK"


def make(rgb: np.ndarray) -> bytes:
    """A JPEG of the oriented RGB pixels, scaled down to at most PREVIEW_PIXELS."""
    height, width = rgb.shape[:2]
    image = Image.fromarray(rgb)
    scale = math.sqrt(PREVIEW_PIXELS / (width * height))
    if scale < 1:
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=PREVIEW_QUALITY)
    return out.getvalue()


THUMBNAIL_SIDE = 240


def thumbnail(data: bytes) -> bytes:
    """A JPEG of at most THUMBNAIL_SIDE pixels a side, from an image a browser shows (an
    upload's original or its preview, both checked when they were stored), upright."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))  # JPEG: decode scaled
        small = ImageOps.exif_transpose(image).convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=PREVIEW_QUALITY)
    return out.getvalue()
