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
    deep = distance < 90 - solidify.BAND - solidify.RAMP - 1
    assert prob[deep].max() < 0.83  # a see-through subject before
    assert out[deep].min() == 1.0


def test_the_background_far_from_the_outline_becomes_clear(disc):
    prob, out, distance = disc
    far = distance > 90 + solidify.BAND + solidify.RAMP + 1
    assert prob[far].min() > 0.07  # a faint haze before
    assert out[far].max() == 0.0


def test_the_outline_keeps_the_models_softness(disc):
    prob, out, distance = disc
    edge = np.abs(distance - 89.5) < solidify.BAND - 0.5  # the 0.5 outline is at 89.5
    assert np.array_equal(out[edge], prob[edge])
    assert ((out[edge] > 0.2) & (out[edge] < 0.8)).mean() > 0.5  # soft, not hardened


def test_the_change_is_gradual_between_the_outline_and_the_sure_parts(disc):
    _, out, distance = disc
    ramp = (distance < 90 - solidify.BAND - 1) & (distance > 90 - solidify.BAND - solidify.RAMP + 1)
    assert ((out[ramp] > 0.83) & (out[ramp] < 1.0)).all()
    # Along a ray from the centre outwards the map never rises: no halo, no seam.
    row = out[SIZE // 2, SIZE // 2 :]
    assert np.all(np.diff(row) <= 1e-6)


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
