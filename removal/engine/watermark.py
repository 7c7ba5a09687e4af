"""The visible watermark of test results (`test=true`).

A lattice of diagonal lines in both directions, with "CUTOUT TEST" in each cell, laid over the
whole result. The line spacing follows the image's area: lines x + y = c are drawn every
sqrt(w * h / 40) in c, while any rectangle holding a tenth of the image spans at least twice
that in x + y, so every crop of more than a tenth of the image crosses a line. Lines and
letters are light with a dark outline, so they show on any colour and over transparency (they
make transparent pixels partly opaque). The pattern depends only on the image's size, so the
same result always gets the same watermark.

Images under TINY_AREA pixels are covered completely (a tenth of them is a few pixels), each
pixel light or dark, whichever differs more from it.
"""

import math
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LIGHT = 255
DARK = 0
LIGHT_OPACITY = 0.70
DARK_OPACITY = 0.55
TEXT = "CUTOUT TEST"
TINY_AREA = 1024


def coverage(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The watermark's light and dark masks (uint8 H x W, 255 = fully covered)."""
    return _coverage(width, height)


@lru_cache(maxsize=8)
def _coverage(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    light = np.zeros((height, width), np.uint8)
    dark = np.zeros((height, width), np.uint8)
    if width * height < TINY_AREA:
        # Every pixel; apply() picks light or dark per pixel, whichever shows.
        light[:] = 255
        dark[:] = 255
        light.flags.writeable = dark.flags.writeable = False
        return light, dark
    period = math.sqrt(width * height / 40)
    core = max(1, round(min(width, height) / 400))
    outline = core + 2 * max(1, round(core / 2))
    # Lines x + y = c and x - y = c at c = (k + 1/2) * period.
    lines = []
    for k in range(int((width + height) / period) + 2):
        c = (k + 0.5) * period
        lines.append(((c, 0.0), (c - height, float(height))))
    for k in range(-int(height / period) - 2, int(width / period) + 2):
        c = (k + 0.5) * period
        lines.append(((c, 0.0), (c + height, float(height))))
    for mask, thickness in ((dark, outline), (light, core)):
        for (x1, y1), (x2, y2) in lines:
            cv2.line(
                mask,
                (round(x1 * 16), round(y1 * 16)),
                (round(x2 * 16), round(y2 * 16)),
                255,
                thickness,
                cv2.LINE_AA,
                shift=4,
            )
    _stamp_text(light, dark, period)
    light.flags.writeable = dark.flags.writeable = False
    return light, dark


def _stamp_text(light: np.ndarray, dark: np.ndarray, period: float) -> None:
    """ "CUTOUT TEST" centred in every cell of the lattice."""
    height, width = light.shape
    size = int(period / 9)
    if size < 8:
        return
    font = ImageFont.load_default(size)
    stroke = max(1, size // 8)
    left, top, right, bottom = font.getbbox(TEXT, stroke_width=stroke)
    stamp_w, stamp_h = right - left, bottom - top
    light_stamp = Image.new("L", (stamp_w, stamp_h), 0)
    dark_stamp = Image.new("L", (stamp_w, stamp_h), 0)
    origin = (-left, -top)
    ImageDraw.Draw(dark_stamp).text(
        origin, TEXT, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    ImageDraw.Draw(light_stamp).text(origin, TEXT, font=font, fill=255)
    light_stamp, dark_stamp = np.asarray(light_stamp), np.asarray(dark_stamp)
    # Cell centres: x + y = k * period and x - y = m * period, half-way between lines. Only
    # the m whose stamp can reach the image are visited, so the loop grows with the image's
    # outline over the period, not with its square (a thin image has few cells per diagonal).
    reach_x, reach_y = stamp_w / period, stamp_h / period
    for k in range(int((width + height) / period) + 2):
        low = max(
            -int(height / period) - 2,
            math.floor(-k - reach_x),
            math.floor(k - (2 * height) / period - reach_y),
        )
        high = min(
            int(width / period) + 2,
            math.ceil(2 * width / period - k + reach_x) + 1,
            math.ceil(k + reach_y) + 1,
        )
        for m in range(low, high):
            cx, cy = (k + m) * period / 2, (k - m) * period / 2
            x0, y0 = round(cx - stamp_w / 2), round(cy - stamp_h / 2)
            _paste_max(dark, dark_stamp, x0, y0)
            _paste_max(light, light_stamp, x0, y0)


def _paste_max(mask: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> None:
    height, width = mask.shape
    sh, sw = stamp.shape
    x1, y1, x2, y2 = max(0, x0), max(0, y0), min(width, x0 + sw), min(height, y0 + sh)
    if x2 <= x1 or y2 <= y1:
        return
    region = mask[y1:y2, x1:x2]
    np.maximum(region, stamp[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0], out=region)


def apply(
    rgb: np.ndarray, alpha: np.ndarray | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Lay the watermark over a result. With `alpha` (a transparent result) returns
    (rgb, alpha) with the watermark composited over it; without, the opaque rgb."""
    height, width = rgb.shape[:2]
    light, dark = coverage(width, height)
    if width * height < TINY_AREA:
        bright = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) > 127
        if alpha is not None:
            bright &= alpha > 127  # over transparency the light colour shows
        light = np.where(bright, 0, 255).astype(np.uint8)
        dark = 255 - light
    index = np.flatnonzero(cv2.bitwise_or(light, dark))
    out_rgb = rgb.copy()
    out_alpha = None if alpha is None else alpha.copy()
    if not len(index):
        return out_rgb if alpha is None else (out_rgb, out_alpha)
    color = np.take(rgb.reshape(-1, 3), index, axis=0).astype(np.float32)
    a = (
        np.ones((len(index), 1), np.float32)
        if alpha is None
        else np.take(alpha.reshape(-1), index).astype(np.float32)[:, None] / 255
    )
    for mask, value, opacity in ((dark, DARK, DARK_OPACITY), (light, LIGHT, LIGHT_OPACITY)):
        c = np.take(mask.reshape(-1), index).astype(np.float32)[:, None] * (opacity / 255)
        new_a = c + a * (1 - c)
        color = (value * c + color * a * (1 - c)) / np.maximum(new_a, 1e-6)
        a = new_a
    flat_rgb = out_rgb.reshape(-1, 3)
    flat_rgb[index] = np.clip(color + 0.5, 0, 255).astype(np.uint8)
    if alpha is None:
        return out_rgb
    out_alpha.reshape(-1)[index] = np.clip(a[:, 0] * 255 + 0.5, 0, 255).astype(np.uint8)
    return out_rgb, out_alpha


def apply_to_delta(delta_rgba: np.ndarray, input_rgb: np.ndarray) -> np.ndarray:
    """A Delta PNG's pixels (RGBA order, the input's full size) with the watermark written
    in as explicit colours: a client that rebuilds the result from this delta and the input
    gets the watermarked result. Other pixels keep their delta meaning."""
    marker = (delta_rgba[..., 3] == 0) & (delta_rgba[..., 0] == 255)
    result_rgb = delta_rgba[..., :3].copy()
    result_rgb[marker] = input_rgb[marker]
    result_alpha = delta_rgba[..., 3].copy()
    result_alpha[marker] = 255
    marked_rgb, marked_alpha = apply(result_rgb, result_alpha)
    changed = (marked_alpha != result_alpha) | (marked_rgb != result_rgb).any(axis=2)
    out = delta_rgba.copy()
    out[changed, :3] = marked_rgb[changed]
    out[changed, 3] = marked_alpha[changed]
    return out
