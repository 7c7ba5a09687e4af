"""The cheap half of a removal: a `Cutout` and options in, encoded bytes and metadata out.

`render()` chooses the output format, lays the cut-out on a colour when asked, encodes it and
measures the foreground boxes. Everything here is at processing size except the Delta PNG,
which is always at the oriented input's full size.
"""

import cv2
import numpy as np

from . import encode
from .segment import SNAP_LOW
from .types import Box, Cutout, RemovalOptions, RemovalResult

WHITE = (255, 255, 255)


def output_format(options: RemovalOptions) -> str:
    """`auto` is PNG for transparent results, JPEG when a background colour is set."""
    if options.output_format == "auto":
        return "jpeg" if options.background_color is not None else "png"
    return options.output_format


def foreground_box(alpha: np.ndarray, threshold: int = SNAP_LOW) -> Box:
    """Bounding box (top, left, width, height) of pixels with alpha above `threshold`;
    Box(0, 0, 0, 0) when there are none."""
    if alpha.size == 0:
        return Box()
    cols = cv2.reduce(alpha, 0, cv2.REDUCE_MAX).ravel() > threshold
    if not cols.any():
        return Box()
    rows = cv2.reduce(alpha, 1, cv2.REDUCE_MAX).ravel() > threshold
    xs = np.flatnonzero(cols)
    ys = np.flatnonzero(rows)
    return Box(
        top=int(ys[0]),
        left=int(xs[0]),
        width=int(xs[-1] - xs[0] + 1),
        height=int(ys[-1] - ys[0] + 1),
    )


def scale_box(box: Box, src_size: tuple[int, int], dst_size: tuple[int, int]) -> Box:
    """`box` measured on an image of `src_size` (w, h), in the pixels of `dst_size`."""
    if box.width == 0 or box.height == 0 or src_size == dst_size:
        return box
    sx = dst_size[0] / src_size[0]
    sy = dst_size[1] / src_size[1]
    left = int(np.floor(box.left * sx))
    top = int(np.floor(box.top * sy))
    right = min(dst_size[0], int(np.ceil((box.left + box.width) * sx)))
    bottom = min(dst_size[1], int(np.ceil((box.top + box.height) * sy)))
    return Box(top=top, left=left, width=max(1, right - left), height=max(1, bottom - top))


def composite(rgb: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """The cut-out laid on an opaque colour: rgb·a + color·(1 − a), uint8 HxWx3."""
    weights = alpha.astype(np.float32) * (1.0 / 255.0)
    inverse = 1.0 - weights
    background = np.empty_like(rgb)
    background[:] = color
    return cv2.blendLinear(rgb, background, weights, inverse)


def full_size_layers(cutout: Cutout) -> tuple[np.ndarray, np.ndarray]:
    """The oriented input's RGB and the alpha at the input's full size (for Delta PNG)."""
    width, height = cutout.full_size
    if cutout.alpha.shape[:2] == (height, width):
        return cutout.rgb, cutout.alpha
    rgb = cutout.extra["full_rgb"]
    alpha = cv2.resize(cutout.alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    full_input_alpha = cutout.extra.get("full_input_alpha")
    if full_input_alpha is not None:
        cv2.min(alpha, full_input_alpha, dst=alpha)
    return rgb, alpha


def render(cutout: Cutout, options: RemovalOptions) -> RemovalResult:
    fmt = output_format(options)
    height, width = cutout.alpha.shape[:2]
    processing_size = (width, height)
    box = foreground_box(cutout.alpha)
    input_box = scale_box(box, processing_size, cutout.full_size)
    # options.test: the watermark is applied by the options work (issue 4); accepted here.
    if fmt == "delta_png":
        rgb, alpha = full_size_layers(cutout)
        body = encode.delta_png(rgb, alpha)
        return RemovalResult(
            body=body,
            content_type="image/png",
            input_size=cutout.full_size,
            result_size=cutout.full_size,
            input_foreground=input_box,
            result_foreground=input_box,
            orientation=cutout.orientation,
        )
    if fmt == "mask":
        body, content_type = encode.mask_png(cutout.alpha), "image/png"
    elif fmt == "png":
        if options.background_color is not None:
            body = encode.png(composite(cutout.rgb, cutout.alpha, options.background_color))
        else:
            body = encode.png_rgba(cutout.rgb, cutout.alpha)
        content_type = "image/png"
    elif fmt == "jpeg":
        color = options.background_color if options.background_color is not None else WHITE
        body = encode.jpeg(composite(cutout.rgb, cutout.alpha, color), options.jpeg_quality)
        content_type = "image/jpeg"
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return RemovalResult(
        body=body,
        content_type=content_type,
        input_size=cutout.full_size,
        result_size=processing_size,
        input_foreground=input_box,
        result_foreground=box,
        orientation=cutout.orientation,
    )
