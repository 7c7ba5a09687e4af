"""From the model's low-resolution probability map to a map at processing size.

`upsample()` is the seam where edge-aware refinement goes; today it is a plain bilinear resize.
"""

import cv2
import numpy as np


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
