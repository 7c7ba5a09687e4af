"""Clean edges and backgrounds: foreground colour estimation and compositing.

Arrays are `uint8`: rgb is H x W x 3, alpha H x W. Nothing here changes the alpha.

Foreground colour estimation follows Forte & Pitie's "blur fusion" (Approximate Fast Foreground
Colour Estimation, 2021; a fast stand-in for Germer et al.'s multi-level estimator): a wide
box (90 px) gives smooth local averages of the foreground and background colours, a narrow box
(6 px) refines the foreground's, and each partially transparent pixel then solves
I = a*F + (1-a)*B for F with those averages. Only pixels with 0 < alpha < 255 change. To keep
the cost low at 4 MP and above, the wide pass runs on a ~400 px copy, the narrow pass on a copy
at most 1600 px long, and only the final per-pixel solve runs at full size, on the soft pixels
alone. On test composites this matches the full-resolution two-pass reference to within 0.1
grey level (bench/edges.py times it against the whole pipeline).
"""

import cv2
import numpy as np

from removal.errors import RemovalError

from . import decode
from .types import RemovalOptions

# The background image's error code (remove.bg `bg_image_url` / `bg_image_file`).
BACKGROUND_IMAGE_ERROR = 2092
WHITE = (255, 255, 255)

# Box sizes of the two passes in full-size pixels (Forte & Pitie's 90 and 6).
_WIDE_BOX = 90
_NARROW_BOX = 6
_COARSE_SIDE = 400  # the wide pass works on a copy whose longest side is about this
_NARROW_SIDE = 1600  # the narrow pass works on a copy whose longest side is at most this
_EPS = 1e-5
_CHUNK = 1 << 20  # soft pixels solved at a time


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Return a copy of `rgb` whose partially transparent pixels hold their estimated
    foreground colour (the old background's share removed); other pixels are unchanged."""
    out = rgb.copy()
    index = np.flatnonzero(cv2.inRange(alpha, 1, 254))
    if not len(index):
        return out
    height, width = alpha.shape
    # The narrow pass runs on a copy at most _NARROW_SIDE long (half size at 4 MP): its
    # local averages are smooth, and the detail comes back from the full-size image below.
    step = max(1, -(-max(height, width) // _NARROW_SIDE))
    small_rgb, small_alpha = _shrink(rgb, step), _shrink(alpha, step)
    fg, bg, factor = _wide_pass(small_rgb, small_alpha, _WIDE_BOX / step)
    fg, bg = _narrow_pass(small_rgb, small_alpha, fg, bg, factor, _NARROW_BOX / step)
    # The nearest narrow-pass pixel's averages: they are smooth, so this costs nothing
    # visible and is several times faster than interpolating a million points. In chunks,
    # so the per-pixel temporaries stay small at 12 MP and above.
    small_h, small_w = small_alpha.shape
    fg, bg = fg.reshape(-1, 3), bg.reshape(-1, 3)
    for start in range(0, len(index), _CHUNK):
        part = index[start : start + _CHUNK]
        y, x = np.divmod(part, width)
        y //= step
        x //= step
        np.minimum(y, small_h - 1, out=y)
        np.minimum(x, small_w - 1, out=x)
        y *= small_w
        y += x
        fixed = _solve(rgb, alpha, part, np.take(fg, y, axis=0), np.take(bg, y, axis=0))
        _scatter(out, part, fixed)
    return out


def _positions(index: np.ndarray, width: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indexes -> (x, y) float32 positions on a grid `step` times coarser."""
    y, x = np.divmod(index, width)
    x = x.astype(np.float32)
    y = y.astype(np.float32)
    for v in (x, y):
        v += 0.5
        v *= 1 / step
        v -= 0.5
    return x, y


def _solve(
    rgb: np.ndarray, alpha: np.ndarray, index: np.ndarray, fg: np.ndarray, bg: np.ndarray
) -> np.ndarray:
    """Forte & Pitie's update F = fg + a * (I - a * fg - (1 - a) * bg) at the pixels
    `index` (flat), with fg and bg (N x 3 float32, 0-1) the local averages there;
    returned as N x 3 uint8."""
    a = np.take(alpha.reshape(-1), index).astype(np.float32)[:, None]
    a *= 1 / 255
    estimate = _gather(rgb, index).astype(np.float32)
    estimate *= 1 / 255
    estimate -= a * fg
    bg *= 1 - a
    estimate -= bg
    estimate *= a
    estimate += fg
    estimate *= 255
    estimate += 0.5
    np.clip(estimate, 0, 255, out=estimate)
    return estimate.astype(np.uint8)


def _pixels(image: np.ndarray) -> np.ndarray:
    """An H x W x 3 uint8 image as a flat array of 3-byte items: numpy gathers and
    scatters those several times faster than rows of an N x 3 array."""
    return np.ascontiguousarray(image).reshape(-1).view("V3")


def _gather(image: np.ndarray, index: np.ndarray) -> np.ndarray:
    """image.reshape(-1, 3)[index] as N x 3 uint8."""
    return np.take(_pixels(image), index).view(np.uint8).reshape(-1, 3)


def _scatter(image: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """image.reshape(-1, 3)[index] = values (image must be C-contiguous)."""
    np.put(image.reshape(-1).view("V3"), index, _pixels(values))


def _shrink(image: np.ndarray, step: int) -> np.ndarray:
    """Block means over `step` x `step` blocks (the last partial row/column dropped)."""
    if step == 1:
        return image
    height, width = image.shape[0] // step, image.shape[1] // step
    # Whole blocks only: OpenCV's area resize is much faster at an integer factor.
    image = image[: height * step, : width * step]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _narrow_pass(
    rgb: np.ndarray,
    alpha: np.ndarray,
    fg: np.ndarray,
    bg: np.ndarray,
    factor: int,
    box_size: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Local foreground averages over a narrow box, starting from the wide pass's estimate
    where 0 < alpha < 1 (elsewhere the image itself), and the wide pass's background
    averages; both float32 0-1 at `rgb`'s size."""
    height, width = alpha.shape
    soft = np.flatnonzero(cv2.inRange(alpha, 1, 254))
    x, y = _positions(soft, width, factor)
    estimate = rgb.copy()
    _scatter(estimate, soft, _solve(rgb, alpha, soft, _sample(fg, x, y), _sample(bg, x, y)))
    box = (max(2, round(box_size)),) * 2
    a = alpha.astype(np.float32)
    a *= 1 / 255
    blur_a = cv2.merge([cv2.blur(a, box)] * 3)
    a3 = cv2.merge([a, a, a])
    local_fg = cv2.blur(cv2.multiply(estimate, a3, scale=1 / 255, dtype=cv2.CV_32F), box)
    local_fg /= blur_a + _EPS
    # The background's average stays the wide pass's: it is smooth already, and re-averaging
    # it over the narrow box changed no result measurably (bench/edges.py's photos).
    local_bg = cv2.resize(bg, (width, height), interpolation=cv2.INTER_LINEAR)
    return local_fg, local_bg


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of an H x W x C float image at pixel positions (1-D float32 arrays)."""
    points = len(xs)
    width = 1024  # remap's output must stay under 32767 rows and columns
    count = -(-points // width) * width
    map_x = np.zeros(count, np.float32)
    map_y = np.zeros(count, np.float32)
    map_x[:points], map_y[:points] = xs, ys
    shape = (count // width, width)
    samples = cv2.remap(
        image,
        map_x.reshape(shape),
        map_y.reshape(shape),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return samples.reshape(count, -1)[:points]


def _wide_pass(
    rgb: np.ndarray, alpha: np.ndarray, box_size: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Local average colours of foreground and background on a small copy of the image.
    Returns them (float32, 0-1) and the integer downscale factor."""
    height, width = alpha.shape
    factor = max(1, -(-max(height, width) // _COARSE_SIDE))
    # Every factor-th pixel: the wide box averages hundreds of them, so no need to
    # pre-filter; the sample stands for the centre of its block.
    offset = factor // 2
    image = rgb[offset::factor, offset::factor].astype(np.float32) * (1 / 255)
    a = alpha[offset::factor, offset::factor].astype(np.float32) * (1 / 255)
    a3 = cv2.merge([a, a, a])
    box = (max(3, round(box_size / factor)),) * 2
    blur_a = cv2.merge([cv2.blur(a, box)] * 3)
    fg = cv2.blur(image * a3, box) / (blur_a + _EPS)
    bg = cv2.blur(image * (1 - a3), box) / (1 - blur_a + _EPS)
    return fg, bg, factor


def composite(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray | tuple) -> np.ndarray:
    """Paint `rgb` with `alpha` over an opaque background: a colour (r, g, b) or an
    H x W x 3 uint8 image of the same size. Returns H x W x 3 uint8 (exact where alpha is 0
    or 255, within one level between)."""
    if isinstance(background, np.ndarray):
        back = np.ascontiguousarray(background)
    else:
        back = np.empty_like(rgb)
        back[:] = background
    weights = alpha.astype(np.float32)
    weights *= 1 / 255
    return cv2.blendLinear(np.ascontiguousarray(rgb), back, weights, 1 - weights)


def probe_background(data: bytes) -> None:
    """Header-only check of a background image, for callers that refuse bad requests before
    the expensive work: raises RemovalError(2092) for what `load_background` would refuse
    at the header (empty, not an image, unsupported, too many pixels)."""
    try:
        decode.probe(data)
    except RemovalError as exc:
        raise RemovalError(
            BACKGROUND_IMAGE_ERROR, f"Failed to read the background image: {exc.message}"
        ) from None


def load_background(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Decode a background image (any input format, EXIF orientation applied, same pixel
    cap as inputs) and fit it to `size` (w, h) as remove.bg does: scaled to fill the canvas
    keeping its aspect ratio, centred, the overflow cropped. A transparent background image
    is flattened on white. Raises RemovalError(2092) when it can't be read."""
    try:
        decoded = decode.decode(data)
    except RemovalError as exc:
        raise RemovalError(
            BACKGROUND_IMAGE_ERROR, f"Failed to read the background image: {exc.message}"
        ) from None
    back = decoded.rgb
    if decoded.alpha is not None:
        back = composite(back, decoded.alpha, WHITE)
    return fit_cover(back, size)


def fit_cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale `image` to cover `size` (w, h) keeping its aspect ratio, then centre-crop."""
    width, height = size
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=method)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def flatten_background(
    rgb: np.ndarray, alpha: np.ndarray, options: RemovalOptions, opaque: bool
) -> np.ndarray | None:
    """The opaque result for `options`, or None when the result stays transparent.

    A background image wins over a colour; `opaque` (a JPEG) without either means white.
    """
    height, width = alpha.shape
    if options.background_image is not None:
        back = load_background(options.background_image, (width, height))
        return composite(rgb, alpha, back)
    if options.background_color is not None:
        return composite(rgb, alpha, tuple(options.background_color))
    if opaque:
        return composite(rgb, alpha, WHITE)
    return None
