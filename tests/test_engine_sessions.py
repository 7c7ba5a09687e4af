"""One model session serving many request threads, and the session's memory and thread options:
none of them may change a cut-out."""

import threading

import numpy as np
import pytest
from django.conf import settings as django_settings
from skimage import data as skdata

from removal import active_engine
from removal.engine import local
from removal.engine.types import RemovalOptions

from .support_engine import encode_image

PHOTOS = {
    "chelsea": encode_image(skdata.chelsea(), "JPEG", quality=90),
    "astronaut": encode_image(skdata.astronaut()),
}


def alphas(engine: local.LocalRemover) -> dict[str, np.ndarray]:
    return {name: engine.analyse(data, RemovalOptions()).alpha for name, data in PHOTOS.items()}


def test_requests_sharing_one_session_at_once_get_what_they_get_one_at_a_time(engine):
    serial = alphas(engine)
    results: dict[tuple[str, int], np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2 * len(PHOTOS))

    def request(name: str, copy: int) -> None:
        try:
            start.wait()
            results[name, copy] = engine.analyse(PHOTOS[name], RemovalOptions()).alpha
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [
        threading.Thread(target=request, args=(name, copy)) for name in PHOTOS for copy in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for (name, _), alpha in results.items():
        assert np.array_equal(alpha, serial[name]), name
    assert len(results) == 2 * len(PHOTOS)


def test_releasing_the_arena_and_sleeping_threads_change_no_pixel(engine):
    """The shared engine keeps its arena for these small photos; this one gives it back after
    every run and its threads never spin: the same alpha, run after run."""
    spec = engine.spec
    lean = local.LocalRemover(
        spec.path(django_settings.CUTOUT_MODELS_DIR),
        spec,
        threads=engine.segmenter.threads,
        spinning=False,
        release_arena_pixels=0,
    )
    expected = alphas(engine)
    assert engine.release_arena_pixels > max(alpha.size for alpha in expected.values())
    for _ in range(2):
        got = alphas(lean)
        for name in PHOTOS:
            assert np.array_equal(got[name], expected[name]), name


@pytest.mark.parametrize(
    ("processes", "threads", "spinning"),
    [(2, 1, True), (1, 2, True), (2, 2, False), (0, 2, True), (0, 4, False)],
)
def test_onnxruntime_threads_spin_only_when_they_have_the_cores(
    settings, processes, threads, spinning
):
    settings.CUTOUT_CORES = 2
    settings.CUTOUT_ENGINE_PROCESSES = processes
    settings.CUTOUT_INFERENCE_THREADS = threads
    factory = active_engine.local_factory()
    assert factory.keywords["threads"] == threads
    assert factory.keywords["spinning"] is spinning
