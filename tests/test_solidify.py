"""solidify.py: the sure inside opaque, the sure background clear, the outline left soft
(synthetic maps of a known shape with a soft edge)."""

import numpy as np
import pytest

from removal.engine import solidify

SIZE = 320


def _soft_disc(inside: float, haze: float, radius: float = 90.0, edge: float = 4.0) -> np.ndarray:
    """A disc whose map is `inside` at its centre, falling linearly to `haze` across an edge
    `edge` pixels wide either side of `radius` (the model's picture of a subject it is not
    quite sure of, on a slightly hazy background)."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    distance = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    t = np.clip((radius + edge - distance) / (2 * edge), 0.0, 1.0)
    return (haze + t * (inside - haze)).astype(np.float32), distance


@pytest.fixture
def disc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prob, distance = _soft_disc(inside=0.82, haze=0.08)
    return prob, solidify.solidify(prob), distance


def test_the_inside_far_from_the_outline_becomes_opaque(disc):
    prob, out, distance = disc
    deep = distance < 90 - solidify.BAND_IN - solidify.RAMP_IN - 1
    assert prob[deep].max() < 0.83  # a see-through subject before
    assert out[deep].min() == 1.0


def test_the_background_far_from_the_outline_becomes_clear(disc):
    prob, out, distance = disc
    far = distance > 90 + solidify.BAND_OUT + solidify.RAMP_OUT + 1
    assert prob[far].min() > 0.07  # a faint haze before
    assert out[far].max() == 0.0


def test_the_outline_keeps_the_models_softness(disc):
    prob, out, distance = disc
    # The 0.5 outline is at 89.5: the map is kept within BAND_IN inside it and BAND_OUT
    # outside it.
    edge = (distance > 89.5 - solidify.BAND_IN + 0.5) & (distance < 89.5 + solidify.BAND_OUT - 0.5)
    assert np.array_equal(out[edge], prob[edge])
    fringe = (prob > 0.1) & (prob < 0.5)  # the soft edge beyond the outline: not hardened
    assert fringe.sum() > 1000 and np.array_equal(out[fringe], prob[fringe])


def test_soft_fur_beyond_the_outline_is_kept_longer_than_haze_inside_it():
    """Outside the subject the band is wider than inside: a soft fringe (hair, fur) a few
    pixels beyond the 0.5 outline keeps its value, while a see-through body a few pixels
    inside it is already opaque."""
    prob, distance = _soft_disc(inside=0.82, haze=0.08, edge=8.0)
    out = solidify.solidify(prob)
    outline = distance[prob >= 0.5].max()  # the 0.5 outline, about 89 pixels out
    fringe = (prob < 0.5) & (distance < outline + solidify.BAND_OUT - 0.5)
    body = distance < outline - solidify.BAND_IN - solidify.RAMP_IN - 0.5
    assert ((prob[fringe] > 0.1) & (prob[fringe] < 0.5)).all()
    assert np.array_equal(out[fringe], prob[fringe])
    assert out[body].min() == 1.0 and prob[body].min() < 0.83


def test_the_change_is_gradual_between_the_outline_and_the_sure_parts(disc):
    prob, out, _ = disc
    # Along a ray from the centre outwards: some pixels partly raised inside the outline,
    # some partly lowered outside it, and the map never rises (no halo, no seam).
    before, after = prob[SIZE // 2, SIZE // 2 :], out[SIZE // 2, SIZE // 2 :]
    assert ((before >= 0.5) & (after > before) & (after < 1.0)).any()
    assert ((before < 0.5) & (after < before) & (after > 0.0)).any()
    assert np.all(np.diff(after) <= 1e-6)


def test_a_narrow_soft_gap_inside_the_subject_stays_as_the_model_says():
    """A mesh or a gap between strands: narrower than the band, it is outline, not inside."""
    prob, _ = _soft_disc(inside=0.95, haze=0.02)
    prob[100:220, 158:162] = 0.3  # a 4-pixel slit of partial transparency
    out = solidify.solidify(prob)
    assert np.allclose(out[100:220, 158:162], 0.3)


def test_a_map_without_an_outline_is_left_as_it_is():
    for prob in (np.full((SIZE, SIZE), 0.3, np.float32), np.full((SIZE, SIZE), 0.7, np.float32)):
        out = solidify.solidify(prob)
        assert np.array_equal(out, prob) and out is not prob


def test_the_result_is_a_float32_map_in_range(disc):
    _, out, _ = disc
    assert out.dtype == np.float32 and out.shape == (SIZE, SIZE)
    assert 0.0 <= out.min() and out.max() <= 1.0
