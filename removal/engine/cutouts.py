"""From image bytes to the arrays a `Cutout` is made of: decode, orient, scale to
`max_pixels` (for `analyse`), or to a stored alpha's size (to re-render a kept upload)."""

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from . import decode
from .types import Cutout


def processing_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(w, h) scaled down, keeping the aspect ratio, to at most `max_pixels` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w = max(1, int(width * scale))
    new_h = max(1, int(height * scale))
    while new_w * new_h > max_pixels and (new_w > 1 or new_h > 1):
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    return new_w, new_h


@dataclass
class Prepared:
    """The oriented input at processing size (`rgb`, `input_alpha`) and, when that is
    smaller than the input, at full size too."""

    rgb: np.ndarray
    input_alpha: np.ndarray | None
    full_size: tuple[int, int]
    orientation: int
    source_format: str
    full_rgb: np.ndarray | None
    full_input_alpha: np.ndarray | None
    timings: dict[str, float]

    def cutout(self, alpha: np.ndarray) -> Cutout:
        return Cutout(
            rgb=self.rgb,
            alpha=alpha,
            full_size=self.full_size,
            orientation=self.orientation,
            source_format=self.source_format,
            full_rgb=self.full_rgb,
            full_input_alpha=self.full_input_alpha,
            timings=self.timings,
        )


def prepare(data: bytes, size: tuple[int, int] | int) -> Prepared:
    """Decode `data` and scale it to `size`: a pixel budget (`max_pixels`), or an exact
    (w, h). Raises RemovalError for images the decoder refuses."""
    started = time.perf_counter()
    decoded = decode.decode(data)
    decoded_at = time.perf_counter()
    full_rgb, full_alpha = decoded.rgb, decoded.alpha
    full_h, full_w = full_rgb.shape[:2]
    work_w, work_h = processing_size(full_w, full_h, size) if isinstance(size, int) else size
    kept_rgb = kept_alpha = None
    if (work_w, work_h) != (full_w, full_h):
        rgb = cv2.resize(full_rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)
        input_alpha = None
        if full_alpha is not None:
            input_alpha = cv2.resize(full_alpha, (work_w, work_h), interpolation=cv2.INTER_AREA)
        kept_rgb, kept_alpha = full_rgb, full_alpha
    else:
        rgb, input_alpha = full_rgb, full_alpha
    return Prepared(
        rgb=rgb,
        input_alpha=input_alpha,
        full_size=(full_w, full_h),
        orientation=decoded.info.orientation,
        source_format=decoded.info.format,
        full_rgb=kept_rgb,
        full_input_alpha=kept_alpha,
        timings={"decode": decoded_at - started, "scale": time.perf_counter() - decoded_at},
    )


def restore(data: bytes, alpha: np.ndarray) -> Cutout:
    """The Cutout `analyse` made of `data`, from its kept alpha (uint8, at processing size):
    the original decoded again and scaled to the alpha's size."""
    height, width = alpha.shape[:2]
    return prepare(data, (width, height)).cutout(alpha)
