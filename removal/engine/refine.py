"""From the photo to the model's probability map, at the model's resolution and at full size.

Framing. A U²-Net map depends on how the photo is fitted into the model's square input, and
the two obvious fittings fail differently:

- stretched to the square (how U²-Net was trained): the subject keeps the most pixels, but a
  subject that spans the frame touches its borders, and salient-object models learn that
  what touches the border is background, so they drop it (a gull across a beach, a row of
  tulips, a cat's face filling a close-up);
- letterboxed (aspect ratio kept, the free band filled with the photo's mean colour): nothing
  touches the border any more and shapes are not distorted, but a thin subject gets fewer
  pixels and the uniform bands change the scene, so it sometimes loses a small subject that
  the stretched view finds (a rocket between launch towers).

Each view fixes the other's failures, but their union (a per-pixel maximum, the engine's
choice until issue 15) also keeps both views' false positives: on ordinary photos much more
background (share of clear background left visible 0.098 against 0.046), and it always costs
two inferences. So `predict()` runs the stretched view first and asks for the letterboxed
one only when the first leaves the subject in doubt (`needs_second_view`: much of the frame
undecided, a small subject, or a subject touching a side of the frame that letterboxing moves
away from the border: top or bottom of a wide photo, left or right of a tall one; the other two
sides touch the border in both views, so a second view cannot help there); when both ran it
keeps their union (`combine`). Keeping the surer whole map instead (`doubt`) held with
u2netp but lost IoU against the union on the dev set with u2net (0.677 against 0.705, the
interval of the difference below zero). Measured on the three shared sets in
docs/BENCHMARKS.md ("Quality on three sets"). A square photo has one fitting only and costs
one inference.

`upsample()` takes the low-resolution map to the processing size. Edge-aware (guided)
upsampling was measured and lost (see docs/BENCHMARKS.md), so it is a plain resize.
"""

from collections.abc import Callable

import cv2
import numpy as np

# predict(rgb, alpha or None) -> the model's SxS float32 map for an image it resizes to SxS.
SquarePredict = Callable[[np.ndarray, np.ndarray | None], np.ndarray]

# Below this difference between width and height (relative), letterboxing would move the
# photo's edges by under 2 % of the frame: the second view would repeat the first.
SQUARE_TOLERANCE = 0.02

# When the stretched view is in doubt (needs_second_view): measured on the three shared
# sets with bench/alpha_study.py (docs/BENCHMARKS.md, "Quality on three sets").
# DOUBT was 0.5 until bfloat16 (segment.py): one matting photo (GT09, a subject the stretched
# view half loses) sits just under 0.5 in bfloat16 and above it in float32; at 0.4 both
# precisions ask for its second view, and every set holds for both models in float32.
DOUBT = 0.4  # undecided share of the frame per unit of subject area
SMALL = 0.12  # subject under 12 % of the frame
SIDE_COVER = 0.1  # a side of the frame is "covered" when 10 % of it is subject
SIDES = 1  # a subject covering this many sides may have lost its part beyond the border
MIN_AREA = 0.001  # a map with less subject than this has found none


def letterbox(
    rgb: np.ndarray, alpha: np.ndarray | None, size: int
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int, int, int]]:
    """`rgb` (and `alpha`) fitted inside a `size` square, aspect ratio kept, centred.

    The free band is the photo's mean colour (opaque); returns the square image, its alpha
    (None without input alpha) and the photo's place in it as (top, left, height, width).
    """
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    inner_w = min(size, max(1, round(width * scale)))
    inner_h = min(size, max(1, round(height * scale)))
    small = cv2.resize(rgb, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    top, left = (size - inner_h) // 2, (size - inner_w) // 2
    mean = small.reshape(-1, 3).mean(axis=0)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = np.round(mean).astype(np.uint8)
    canvas[top : top + inner_h, left : left + inner_w] = small
    canvas_alpha = None
    if alpha is not None:
        canvas_alpha = np.full((size, size), 255, np.uint8)
        canvas_alpha[top : top + inner_h, left : left + inner_w] = cv2.resize(
            alpha, (inner_w, inner_h), interpolation=cv2.INTER_AREA
        )
    return canvas, canvas_alpha, (top, left, inner_h, inner_w)


def is_square(photo_shape: tuple[int, ...]) -> bool:
    """Whether a photo of `photo_shape` (height, width, ...) has one fitting only."""
    height, width = photo_shape[:2]
    return abs(width - height) <= SQUARE_TOLERANCE * max(width, height)


def stretched_view(
    predict_square: SquarePredict, rgb: np.ndarray, alpha: np.ndarray | None
) -> np.ndarray:
    """The model's map of the whole photo resized to its square input (float32 SxS)."""
    return np.asarray(predict_square(rgb, alpha), dtype=np.float32)


def letterboxed_view(
    predict_square: SquarePredict,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    size: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """The letterboxed view's map of the photo, brought back to the stretched frame of
    `shape` (the stretched map's height x width)."""
    canvas, canvas_alpha, (top, left, inner_h, inner_w) = letterbox(rgb, alpha, size)
    boxed = np.asarray(predict_square(canvas, canvas_alpha), dtype=np.float32)
    # The letterboxed map is on the model's grid; its photo region, back in the stretched frame.
    sy, sx = boxed.shape[0] / size, boxed.shape[1] / size
    region = boxed[
        round(top * sy) : round((top + inner_h) * sy),
        round(left * sx) : round((left + inner_w) * sx),
    ]
    return cv2.resize(region, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def doubt(prob: np.ndarray) -> float:
    """How unsure a map is of its subject: the share of the frame the model leaves undecided
    (between 0.1 and 0.9), per unit of the subject's area (0.5 and above). A map that finds
    no subject at all is infinitely doubtful."""
    area = float((prob >= 0.5).mean())
    if area < MIN_AREA:
        return float("inf")
    return float(((prob > 0.1) & (prob < 0.9)).mean()) / area


def needs_second_view(stretched: np.ndarray, photo_shape: tuple[int, ...]) -> bool:
    """Whether a photo of `photo_shape` (height, width, ...) takes the letterboxed view too:
    never when it is (nearly) square (one fitting only); otherwise when its stretched view
    leaves the subject in doubt: much of the frame undecided, a small subject (often a part
    of the real one, or the wrong one), or a subject touching a side of the frame that the
    letterboxed view moves away from the border (the case the stretched view loses: what
    touches the border looks like background to the model)."""
    if is_square(photo_shape):
        return False
    subject = stretched >= 0.5
    height, width = photo_shape[:2]
    if width >= height:  # letterboxing pads above and below
        sides = [subject[0].mean(), subject[-1].mean()]
    else:  # and left and right of a tall photo
        sides = [subject[:, 0].mean(), subject[:, -1].mean()]
    touching = sum(float(side) >= SIDE_COVER for side in sides) >= SIDES
    return bool(doubt(stretched) > DOUBT or float(subject.mean()) < SMALL or touching)


def combine(stretched: np.ndarray, boxed: np.ndarray) -> np.ndarray:
    """The two views' maps (same frame) made one: their per-pixel maximum."""
    return np.maximum(stretched, boxed)


def predict(
    predict_square: SquarePredict, rgb: np.ndarray, alpha: np.ndarray | None, size: int
) -> np.ndarray:
    """The stretched view's map, or both views' union where the stretched one is in doubt
    (see the module's doc).

    `size` is the model's input side. Returns a float32 SxS map in [0, 1] in the stretched
    frame (the whole photo resized to S x S), ready for `upsample()`. One inference, or two
    for a photo that is not (nearly) square and whose stretched view is in doubt.
    """
    stretched = stretched_view(predict_square, rgb, alpha)
    if not needs_second_view(stretched, rgb.shape):
        return stretched
    return combine(stretched, letterboxed_view(predict_square, rgb, alpha, size, stretched.shape))


def upsample(prob_lowres: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """`prob_lowres` (float32, any size, values in [0, 1]) resized to `rgb`'s height x width.

    Returns a float32 C-contiguous HxW array with values in [0, 1].
    """
    height, width = rgb.shape[:2]
    prob = np.asarray(prob_lowres, dtype=np.float32)
    if prob.shape == (height, width):
        return np.ascontiguousarray(prob)
    interpolation = cv2.INTER_LINEAR if width >= prob.shape[1] else cv2.INTER_AREA
    return cv2.resize(prob, (width, height), interpolation=interpolation)
