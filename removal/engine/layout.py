"""Where the cut-out lands in the result: cropping, margins, target size, scale and position.

`plan()` decides the geometry from sizes and the foreground box only; `apply()` moves the
pixels; `layout()` does both. A `Placement` maps the processing-size image into the result
(result = source * scale + offset), so any box can be carried over with `Placement.box()`.

Rules (spec/pixian-v2.md and its Cutout decisions; remove.bg's `scale` and `position`):
1. The content is the foreground's bounding box with `crop_to_foreground` (when there is a
   foreground; an empty result stays uncropped), else the whole image.
2. Without `target_size` the margins are added around the content at scale 1; `%` is of the
   content's height for top/bottom and of its width for left/right.
3. With `target_size` the result is exactly that size and the margins are inset; `%` is then
   of the target's height / width (as removal/params.py checks). The content is scaled, up or
   down, keeping its aspect ratio, to fit the area inside the margins, centred horizontally,
   and placed vertically by `vertical_alignment`.
4. remove.bg's `scale` (0 < scale <= 1) then resizes the subject (the foreground box) so that
   it fits in `scale` times the result's width and height; `position` (fractions of the free
   space, x then y) says where it sits, centred when only `scale` is given. The result's size
   does not change. With no foreground both are ignored.

Impossible geometry raises RemovalError: margins that leave no room inside the target size,
or that grow a result past MAX_RESULT_PIXELS (the `result.margin` code, 2005), and a target
size past MAX_RESULT_PIXELS (the `result.target_size` code, 2006; removal/params.py already
refuses those in requests). A 1 x 1 target is honoured: the content is scaled to one pixel.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from removal.errors import RemovalError

from .types import Box, Length, Margin, RemovalOptions

MARGIN_ERROR = 2005  # result.margin (removal/params.py CODE_MARGIN)
TARGET_SIZE_ERROR = 2006  # result.target_size (removal/params.py CODE_TARGET_SIZE)
MAX_RESULT_PIXELS = 40_000_000
# The longer side of a result over the shorter, as for inputs (decode.MAX_ASPECT): the work of
# the watermark and compositing loops grows with it.
MAX_RESULT_ASPECT = 1000


@dataclass(frozen=True)
class Placement:
    """The result's size (w, h) and the map from source pixels to result pixels:
    x' = x * scale_x + offset_x, y' = y * scale_y + offset_y (continuous coordinates)."""

    size: tuple[int, int]
    scale_x: float = 1.0
    scale_y: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    # The part of the source that is drawn (x1, y1, x2, y2); everything else is transparent.
    source: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def is_identity(self) -> bool:
        width, height = self.size
        return (
            self.scale_x == 1
            and self.scale_y == 1
            and self.offset_x == 0
            and self.offset_y == 0
            and self.source == (0, 0, width, height)
        )

    def box(self, box: Box) -> Box:
        """A source box in result pixels (grown to whole pixels, clipped to the result and
        to the drawn part of the source). Box() when nothing of it is visible."""
        if box.width <= 0 or box.height <= 0:
            return Box()
        x1, y1, x2, y2 = self.source
        left, top = max(box.left, x1), max(box.top, y1)
        right, bottom = min(box.left + box.width, x2), min(box.top + box.height, y2)
        if right <= left or bottom <= top:
            return Box()
        width, height = self.size
        # A hair of tolerance so that exact pixel edges are not pushed out by float error.
        rl = max(0, math.floor(left * self.scale_x + self.offset_x + 1e-6))
        rt = max(0, math.floor(top * self.scale_y + self.offset_y + 1e-6))
        rr = min(width, math.ceil(right * self.scale_x + self.offset_x - 1e-6))
        rb = min(height, math.ceil(bottom * self.scale_y + self.offset_y - 1e-6))
        if rr <= rl or rb <= rt:
            return Box()
        return Box(top=rt, left=rl, width=rr - rl, height=rb - rt)


def resolve(length: Length, extent: float) -> float:
    """A margin length in pixels: `%` is of `extent`."""
    return length.value * extent / 100 if length.unit == "%" else length.value


def resolve_margin(margin: Margin, width: float, height: float) -> tuple[int, int, int, int]:
    """(top, right, bottom, left) in whole pixels; `%` of `height` for top/bottom and of
    `width` for left/right."""
    return (
        round(resolve(margin.top, height)),
        round(resolve(margin.right, width)),
        round(resolve(margin.bottom, height)),
        round(resolve(margin.left, width)),
    )


def plan(size: tuple[int, int], foreground: Box, options: RemovalOptions) -> Placement:
    """The result's geometry for a source of `size` (w, h) whose foreground box (Box() when
    empty) is `foreground`. Raises RemovalError for impossible margins (see the module)."""
    width, height = size
    has_foreground = foreground.width > 0 and foreground.height > 0
    if options.crop_to_foreground and has_foreground:
        x1, y1 = foreground.left, foreground.top
        x2, y2 = x1 + foreground.width, y1 + foreground.height
    else:
        x1, y1, x2, y2 = 0, 0, width, height
    content_w, content_h = x2 - x1, y2 - y1

    if options.target_size is None:
        top, right, bottom, left = resolve_margin(options.margin, content_w, content_h)
        result = (content_w + left + right, content_h + top + bottom)
        _check_result_size(result, (content_w, content_h))
        placement = Placement(
            result, offset_x=left - x1, offset_y=top - y1, source=(x1, y1, x2, y2)
        )
    else:
        placement = _fit(options, (x1, y1, x2, y2))

    if has_foreground and (options.scale is not None or options.position is not None):
        placement = _reposition(placement, foreground, options)
    return placement


def _too_thin(size: tuple[int, int]) -> bool:
    return max(size) > MAX_RESULT_ASPECT * min(size)


def _check_result_size(result: tuple[int, int], content: tuple[int, int]) -> None:
    """A result the margins grow past MAX_RESULT_PIXELS, or thinner than MAX_RESULT_ASPECT
    (when the content alone is not: a crop to a thin subject is not the margin's fault)."""
    if result[0] * result[1] > MAX_RESULT_PIXELS:
        raise RemovalError(
            MARGIN_ERROR,
            f"result.margin makes the result {result[0]} x {result[1]} pixels, more than "
            f"{MAX_RESULT_PIXELS:,}: use a smaller margin.",
        )
    if result != content and _too_thin(result) and not _too_thin(content):
        raise RemovalError(
            MARGIN_ERROR,
            f"result.margin makes the result {result[0]} x {result[1]} pixels, one side more "
            f"than {MAX_RESULT_ASPECT} times the other: use a smaller margin.",
        )


def _fit(options: RemovalOptions, source: tuple[int, int, int, int]) -> Placement:
    """Scale the source rectangle into the target size, inside the (inset) margins."""
    target_w, target_h = options.target_size
    if (
        target_w < 1
        or target_h < 1
        or target_w * target_h > MAX_RESULT_PIXELS
        or _too_thin((target_w, target_h))
    ):
        raise RemovalError(
            TARGET_SIZE_ERROR,
            f"result.target_size must be at least 1 x 1 and at most {MAX_RESULT_PIXELS:,} "
            f"pixels, neither side over {MAX_RESULT_ASPECT} times the other.",
        )
    x1, y1, x2, y2 = source
    top, right, bottom, left = resolve_margin(options.margin, target_w, target_h)
    area_w, area_h = target_w - left - right, target_h - top - bottom
    if area_w < 1 or area_h < 1:
        raise RemovalError(
            MARGIN_ERROR,
            f"result.margin leaves no room for the image inside result.target_size "
            f"{target_w} {target_h}: make the margin smaller or the target larger.",
        )
    content_w, content_h = x2 - x1, y2 - y1
    scale = min(area_w / content_w, area_h / content_h)
    # Whole pixels, at least one, never past the area (rounding could overshoot by one).
    new_w = min(area_w, max(1, round(content_w * scale)))
    new_h = min(area_h, max(1, round(content_h * scale)))
    x = left + (area_w - new_w) // 2
    if options.vertical_alignment == "top":
        y = top
    elif options.vertical_alignment == "bottom":
        y = top + area_h - new_h
    else:
        y = top + (area_h - new_h) // 2
    scale_x, scale_y = new_w / content_w, new_h / content_h
    return Placement(
        (target_w, target_h),
        scale_x=scale_x,
        scale_y=scale_y,
        offset_x=x - x1 * scale_x,
        offset_y=y - y1 * scale_y,
        source=source,
    )


def _reposition(placement: Placement, foreground: Box, options: RemovalOptions) -> Placement:
    """remove.bg's `scale` and `position`, applied to the subject inside the result."""
    width, height = placement.size
    subject = placement.box(foreground)
    if subject.width == 0 or subject.height == 0:
        return placement
    # The subject as currently placed, in exact (unrounded) result units.
    cur_w = foreground.width * placement.scale_x
    cur_h = foreground.height * placement.scale_y
    factor = 1.0
    if options.scale is not None:
        factor = min(options.scale * width / cur_w, options.scale * height / cur_h)
    new_w = max(1, round(cur_w * factor))
    new_h = max(1, round(cur_h * factor))
    if options.position is not None:
        fx, fy = options.position
    else:
        fx, fy = 0.5, 0.5
    x = round(fx * (width - new_w))
    y = round(fy * (height - new_h))
    scale_x, scale_y = new_w / foreground.width, new_h / foreground.height
    x1, y1 = foreground.left, foreground.top
    return Placement(
        placement.size,
        scale_x=scale_x,
        scale_y=scale_y,
        offset_x=x - x1 * scale_x,
        offset_y=y - y1 * scale_y,
        source=(x1, y1, x1 + foreground.width, y1 + foreground.height),
    )


def apply(
    rgb: np.ndarray, alpha: np.ndarray, placement: Placement
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the source into a transparent result as `placement` says. Scaling resamples the
    colours premultiplied by alpha, so no colour from under transparent pixels bleeds into
    the edges. Transparent result pixels are black."""
    # A crop to a foreground box at the origin has zero offsets too: identity only when the
    # result is also the source's whole size.
    if placement.is_identity and placement.size == (alpha.shape[1], alpha.shape[0]):
        return rgb, alpha
    width, height = placement.size
    x1, y1, x2, y2 = placement.source
    src_rgb, src_alpha = rgb[y1:y2, x1:x2], alpha[y1:y2, x1:x2]
    # The drawn part in result pixels; offsets are whole pixels by construction.
    dst_x = round(x1 * placement.scale_x + placement.offset_x)
    dst_y = round(y1 * placement.scale_y + placement.offset_y)
    new_w = max(1, round((x2 - x1) * placement.scale_x))
    new_h = max(1, round((y2 - y1) * placement.scale_y))
    if (new_w, new_h) != (x2 - x1, y2 - y1):
        src_rgb, src_alpha = _resize_premultiplied(src_rgb, src_alpha, (new_w, new_h))
    out_rgb = np.zeros((height, width, 3), np.uint8)
    out_alpha = np.zeros((height, width), np.uint8)
    # Clip the paste to the result.
    left, top = max(0, dst_x), max(0, dst_y)
    right, bottom = min(width, dst_x + new_w), min(height, dst_y + new_h)
    if right > left and bottom > top:
        sl = slice(left - dst_x, right - dst_x)
        st = slice(top - dst_y, bottom - dst_y)
        out_rgb[top:bottom, left:right] = src_rgb[st, sl]
        out_alpha[top:bottom, left:right] = src_alpha[st, sl]
    return out_rgb, out_alpha


def _resize_premultiplied(
    rgb: np.ndarray, alpha: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize colour and alpha together; colour is averaged weighted by alpha."""
    shrinking = size[0] < rgb.shape[1] or size[1] < rgb.shape[0]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    premultiplied = rgb.astype(np.uint16) * alpha.astype(np.uint16)[..., None]
    premultiplied = cv2.resize(premultiplied, size, interpolation=method)
    new_alpha = cv2.resize(alpha, size, interpolation=method).reshape(size[1], size[0])
    premultiplied = premultiplied.reshape(size[1], size[0], 3).astype(np.uint32)
    weight = np.maximum(new_alpha, 1).astype(np.uint32)[..., None]
    new_rgb = np.minimum((premultiplied + weight // 2) // weight, 255).astype(np.uint8)
    return new_rgb, new_alpha


def layout(
    rgb: np.ndarray, alpha: np.ndarray, foreground: Box, options: RemovalOptions
) -> tuple[np.ndarray, np.ndarray, Placement]:
    """`plan()` then `apply()`: the result's rgb and alpha, and the placement."""
    placement = plan((alpha.shape[1], alpha.shape[0]), foreground, options)
    out_rgb, out_alpha = apply(rgb, alpha, placement)
    return out_rgb, out_alpha, placement
