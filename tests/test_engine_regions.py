"""Segmentation restricted to boxes (remove.bg roi, Baidu control): outside is background,
each box is segmented on its own crop."""

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from removal.engine import regions
from removal.engine.types import Rect, RemovalOptions
from removal.errors import RemovalError


def _not_white(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A stand-in segmenter for these tests: anything that is not the white canvas."""
    return (rgb.min(axis=2) < 235).astype(np.float32)


def test_boxes_are_scaled_clipped_and_grown_to_whole_pixels():
    boxes = regions.resolve(
        [Rect(10, 20, 110, 60), Rect(-50, 250, 120.5, 900), Rect(0.5, 0, 1, 0.25, relative=True)],
        full_size=(400, 300),
        size=(200, 150),
    )
    assert boxes == [(5, 10, 55, 30), (0, 125, 61, 150), (100, 0, 200, 38)]


@pytest.mark.parametrize(
    ("rect", "code"),
    [
        (Rect(500, 0, 600, 50), 2090),
        (Rect(0, -90, 50, 0), 2090),
        (Rect(10, 10, 10, 50), 2091),
        (Rect(10, 50, 40, 20), 2091),
    ],
)
def test_boxes_outside_the_image_or_empty_are_refused(rect, code):
    with pytest.raises(RemovalError) as caught:
        regions.resolve([Rect(0, 0, 10, 10), rect], (400, 300), (400, 300))
    assert caught.value.code == code and "Region 2" in caught.value.message


def test_outside_the_boxes_is_background_and_each_box_gets_its_own_crop():
    canvas = np.full((600, 900, 3), 255, np.uint8)
    canvas[50:350, 50:501] = skdata.chelsea()
    canvas[380:580, 600:850] = cv2.resize(skdata.coffee(), (250, 200))
    crops = []

    def predict(rgb, alpha):
        crops.append(rgb.shape[:2])
        return _not_white(rgb, alpha)

    boxes = (Rect(40, 40, 510, 360), Rect(590, 370, 860, 590))
    prob = regions.segment(canvas, None, boxes, (900, 600), predict)
    assert prob.dtype == np.float32 and prob.shape == (600, 900)
    # Two crops, each its box plus a little context.
    assert len(crops) == 2 and crops[0][0] < 400 and crops[1][1] < 320
    assert prob[50:350, 50:501].mean() > 0.95 and prob[380:580, 600:850].mean() > 0.95
    inside = np.zeros((600, 900), bool)
    inside[40:360, 40:510] = inside[370:590, 590:860] = True
    assert not prob[~inside].any()
    # A box that covers only part of the subject cuts it at the box's edge.
    cut = regions.segment(canvas, None, (Rect(0, 0, 200, 600),), (900, 600), predict)
    assert cut[100:300, 60:200].mean() > 0.95 and not cut[:, 200:].any()


def test_a_small_subject_in_a_box_is_found_by_the_model(engine):
    """With the real model: a small photo on a large plain canvas, restricted to its box."""
    canvas = np.full((900, 1200, 3), 245, np.uint8)
    canvas[600:750, 100:325] = cv2.resize(skdata.chelsea(), (225, 150))
    options = RemovalOptions(regions=(Rect(80, 580, 345, 770),))
    alpha = engine.segment(canvas, None, options, full_size=(1200, 900))
    assert alpha[:, :345].shape and not alpha[:570].any() and not alpha[:, 350:].any()
    # The cat's body (the middle of the photo) is found inside the box.
    assert alpha[650:720, 180:260].mean() > 128
