"""Solid subjects: the model's map made opaque where it is sure of the subject and clear where
it is sure of the background, soft only near the outline.

A salient-object map is rarely 1.0 inside a subject it has found: a curly-haired portrait's
hair and blouse come out at 0.80-0.90, a koala's body at 0.6, so a new background shows
through the subject. It is also rarely 0.0 across a busy background, where faint haze is kept.
Both are far from the subject's outline, and the outline (hair, fur, a thin stem) is where a
soft alpha belongs.

`solidify()` works on the map at the model's resolution, before upsampling (cheap: two
distance transforms on a 320² grid). The subject is the map at or above 0.5. A pixel's
distance to that outline decides how much of the map's own value is kept: within a band of
it the map is kept unchanged; over a ramp beyond the band it is blended towards 1 inside the
subject and towards 0 outside it; further away it is 1 or 0. The two sides differ: inside,
the band is narrow (`BAND_IN`, `RAMP_IN`: a see-through body is raised to opaque close to
its outline); outside it is wider (`BAND_OUT`, `RAMP_OUT`), because soft fur, hair and
foliage reach further out than the 0.5 outline and are the softness that belongs there.
A semi-transparent hole the model finds inside the subject is outside the 0.5 subject and
stays as the model says where it is narrow.
"""

import cv2
import numpy as np

# In pixels of the model's map (320² for U²-Net), measured on the three shared sets
# (docs/BENCHMARKS.md, "Quality on three sets").
BAND_IN = 2.0
RAMP_IN = 2.0
BAND_OUT = 6.0
RAMP_OUT = 6.0


def _weight(distance: np.ndarray, band: float, ramp: float) -> np.ndarray:
    """0 within `band` of the outline, rising linearly to 1 over `ramp` pixels beyond it."""
    weight = distance - band
    weight *= 1.0 / max(ramp, 1e-6)
    return np.clip(weight, 0.0, 1.0, out=weight)


def solidify(
    prob: np.ndarray,
    band_in: float = BAND_IN,
    ramp_in: float = RAMP_IN,
    band_out: float = BAND_OUT,
    ramp_out: float = RAMP_OUT,
) -> np.ndarray:
    """`prob` (float32 HxW in [0, 1]) with its sure inside raised to 1 and its sure outside
    lowered to 0 (see the module's doc). Returns a new float32 array."""
    prob = np.asarray(prob, dtype=np.float32)
    subject = (prob >= 0.5).astype(np.uint8)
    if not subject.any() or subject.all():
        return prob.copy()  # no outline to measure from: nothing is sure
    # Distance of each subject pixel to the nearest non-subject pixel, and vice versa.
    inside = cv2.distanceTransform(subject, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - subject, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    raise_by = _weight(inside, band_in, ramp_in)
    lower_by = _weight(outside, band_out, ramp_out)
    out = prob + raise_by * (1.0 - prob)
    out -= lower_by * out
    return out
