"""The pool of engine processes (removal/engine/pool.py): real engines in real child
processes; paid work admitted ahead of queued free work; a job past the time-out killed."""

import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from removal import errors
from removal.engine import pool
from removal.engine.local import LocalRemover
from removal.engine.types import RemovalOptions
from removal.errors import RemovalError
from tests.support_api import photo

MODELS = Path(__file__).resolve().parent.parent / "var" / "models"


def wait_until(condition, what: str, wait_s: float = 30) -> None:
    deadline = time.monotonic() + wait_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def engines() -> Iterator[pool.EnginePool]:
    """One engine process running the test model."""
    build = functools.partial(LocalRemover.from_name, "u2netp", MODELS, threads=1)
    started = pool.EnginePool(build, processes=1, timeout_s=120)
    started.start()
    yield started
    started.close()


def test_admission_lets_queued_paid_work_in_before_queued_free_work():
    admission = pool.Admission(1)
    admission.acquire(pool.PAID)  # the one permit is taken: everyone else queues
    order: list[str] = []

    def job(name: str, priority: int) -> None:
        with admission.admitted(priority):
            order.append(name)

    free = [threading.Thread(target=job, args=(f"free{n}", pool.FREE)) for n in range(2)]
    for n, thread in enumerate(free, start=1):
        thread.start()
        wait_until(lambda n=n: admission.waiting() == n, "the free jobs to queue")
    paid = threading.Thread(target=job, args=("paid", pool.PAID))
    paid.start()
    wait_until(lambda: admission.waiting() == 3, "the paid job to queue")
    admission.release()
    for thread in [*free, paid]:
        thread.join(10)
    assert order == ["paid", "free0", "free1"]


def test_admission_gives_up_after_the_wait():
    admission = pool.Admission(1)
    admission.acquire(pool.PAID)
    with pytest.raises(pool.EngineBusyError):
        admission.acquire(pool.FREE, wait_s=0.05)
    assert admission.waiting() == 0
    admission.release()
    with admission.admitted(pool.FREE, wait_s=0.05):
        pass


def test_the_pool_runs_the_engine_in_a_child_and_returns_its_result(engines):
    result = engines.call("remove", (photo(), RemovalOptions(output_format="mask"), None))
    assert result.content_type == "image/png" and result.result_size == (240, 160)
    assert result.result_foreground.width > 50


def test_the_engine_s_own_errors_come_back_as_they_were_raised(engines):
    with pytest.raises(RemovalError) as raised:
        engines.call("remove", (b"not an image", RemovalOptions(), None))
    assert raised.value.code in (errors.UNREADABLE_IMAGE, errors.UNSUPPORTED_FORMAT)


def test_a_paid_job_overtakes_queued_free_jobs_in_the_pool(engines):
    engines.admission.acquire(pool.PAID)  # the test holds the one process
    finished: list[str] = []

    def job(name: str, priority: int) -> None:
        engines.call("remove", (photo(), RemovalOptions(), None), priority=priority)
        finished.append(name)

    free = threading.Thread(target=job, args=("free", pool.FREE))
    free.start()
    wait_until(lambda: engines.admission.waiting() == 1, "the free job to queue")
    paid = threading.Thread(target=job, args=("paid", pool.PAID))
    paid.start()
    wait_until(lambda: engines.admission.waiting() == 2, "the paid job to queue")
    engines.admission.release()
    free.join(120)
    paid.join(120)
    # One process: the job admitted first has finished before the other starts.
    assert finished == ["paid", "free"]


def test_a_job_past_the_time_out_is_killed_and_the_pool_serves_on(engines):
    before = engines.timeout_s
    big = photo("astronaut", (2000, 2000))
    engines.timeout_s = 0.01
    try:
        with pytest.raises(pool.EngineTimeoutError):
            engines.call("remove", (big, RemovalOptions(), None))
    finally:
        engines.timeout_s = before
    # A fresh process took the killed one's place (the call waits for it to load).
    result = engines.call("remove", (photo(), RemovalOptions(output_format="mask"), None))
    assert result.result_size == (240, 160)
