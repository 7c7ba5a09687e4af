"""Segmentation restricted to boxes: remove.bg's `roi` and Baidu's `control` boxes.

Outside every box is background. Each box is segmented on its own crop (with a little context
around it), so a small subject gets the model's whole input resolution instead of a few of its
pixels; where boxes overlap the larger value wins.

Boxes arrive as `Rect`s in the oriented input's full-size pixels (or as fractions with
`relative`). A box that reaches past the image is clipped to it; a box entirely outside the
image raises RemovalError(2090) and an empty one RemovalError(2091).
"""

import math
from collections.abc import Callable, Iterable

import numpy as np

from removal.errors import RemovalError

from .types import Rect

REGION_OUTSIDE_ERROR = 2090
REGION_EMPTY_ERROR = 2091
# Context around each box, as a fraction of its size (and at least this many pixels): the
# model judges an edge better when it sees a little of what lies beyond it.
CONTEXT = 0.05
MIN_CONTEXT = 4

# predict(rgb_crop, input_alpha_crop or None) -> float32 map in [0, 1] at the crop's size.
Predict = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def resolve(
    regions: Iterable[Rect], full_size: tuple[int, int], size: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Boxes as whole-pixel (x1, y1, x2, y2), x2/y2 exclusive, on an image of `size` (w, h)
    that is the full-size input of `full_size` scaled. Boxes are grown outward to whole
    pixels and clipped to the image. Raises RemovalError 2090 / 2091 (see the module)."""
    full_w, full_h = full_size
    width, height = size
    boxes = []
    for number, rect in enumerate(regions, start=1):
        x1, y1, x2, y2 = rect.x1, rect.y1, rect.x2, rect.y2
        if rect.relative:
            x1, x2, y1, y2 = x1 * full_w, x2 * full_w, y1 * full_h, y2 * full_h
        if not (x2 > x1 and y2 > y1):
            raise RemovalError(
                REGION_EMPTY_ERROR,
                f"Region {number} is empty: its right and bottom edges must lie beyond its "
                "left and top edges.",
            )
        if x1 >= full_w or y1 >= full_h or x2 <= 0 or y2 <= 0:
            raise RemovalError(
                REGION_OUTSIDE_ERROR,
                f"Region {number} lies outside the image, which is {full_w} x {full_h} pixels.",
            )
        sx, sy = width / full_w, height / full_h
        left = max(0, math.floor(x1 * sx + 1e-9))
        top = max(0, math.floor(y1 * sy + 1e-9))
        right = min(width, max(left + 1, math.ceil(x2 * sx - 1e-9)))
        bottom = min(height, max(top + 1, math.ceil(y2 * sy - 1e-9)))
        boxes.append((left, top, right, bottom))
    return boxes


def segment(
    rgb: np.ndarray,
    input_alpha: np.ndarray | None,
    regions: Iterable[Rect],
    full_size: tuple[int, int],
    predict: Predict,
) -> np.ndarray:
    """The foreground map (float32, [0, 1], `rgb`'s size) with each region segmented on its
    own crop and everything outside the regions 0."""
    height, width = rgb.shape[:2]
    boxes = resolve(regions, full_size, (width, height))
    prob = np.zeros((height, width), np.float32)
    for x1, y1, x2, y2 in boxes:
        pad_x = max(MIN_CONTEXT, round((x2 - x1) * CONTEXT))
        pad_y = max(MIN_CONTEXT, round((y2 - y1) * CONTEXT))
        cx1, cy1 = max(0, x1 - pad_x), max(0, y1 - pad_y)
        cx2, cy2 = min(width, x2 + pad_x), min(height, y2 + pad_y)
        crop_alpha = None if input_alpha is None else input_alpha[cy1:cy2, cx1:cx2]
        crop_prob = np.asarray(predict(rgb[cy1:cy2, cx1:cx2], crop_alpha), np.float32)
        inner = crop_prob[y1 - cy1 : y2 - cy1, x1 - cx1 : x2 - cx1]
        np.maximum(prob[y1:y2, x1:x2], inner, out=prob[y1:y2, x1:x2])
    return prob
