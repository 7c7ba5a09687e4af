"""A pool of engine processes: decoding and inference run where a request's time can be cut.

A Python timer cannot interrupt OpenCV or onnxruntime, and `SIGALRM` does not reach threads, so
each job runs in a child process (one job per child at a time) and a job past `timeout_s` has
its child killed and replaced; the caller gets `EngineTimeoutError` at once. Children are
started with `spawn` (onnxruntime's thread pools do not survive a fork) and load the engine
before they take a job.

Jobs wait for a free child in `Admission`, a priority queue: paid work (`PAID`) is admitted
ahead of queued free work (`FREE`, test mode and try-outs), first come first served within a
priority. No Django here: the caller passes the engine's factory and the limits.
"""

import heapq
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from removal.errors import RemovalError

logger = logging.getLogger(__name__)

PAID = 0
FREE = 1
PRIORITY_NAMES = {PAID: "paid", FREE: "free"}
START_TIMEOUT_S = 120.0


class EngineTimeoutError(Exception):
    """The job ran past the pool's time-out; its child was killed."""


class EngineBusyError(Exception):
    """No child became free within the caller's wait."""


class EngineFailedError(Exception):
    """The child died or raised something other than a RemovalError."""


class Admission:
    """`slots` permits handed out by priority, then arrival (thread-safe)."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[int, int]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()

    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def acquire(self, priority: int, wait_s: float | None = None) -> None:
        """Wait for a permit; EngineBusyError after `wait_s` seconds without one."""
        ticket = (priority, next(self._order))
        deadline = None if wait_s is None else time.monotonic() + wait_s
        with self._cond:
            heapq.heappush(self._waiting, ticket)
            if not (self._free and self._waiting[0] == ticket):
                ahead = sum(1 for other in self._waiting if other < ticket)
                logger.info(
                    "engine busy: a %s job waits (%d ahead)", PRIORITY_NAMES[priority], ahead
                )
            while not (self._free and self._waiting[0] == ticket):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._waiting.remove(ticket)
                    heapq.heapify(self._waiting)
                    self._cond.notify_all()
                    raise EngineBusyError(f"no engine free within {wait_s:.0f} s")
                self._cond.wait(left)
            heapq.heappop(self._waiting)
            self._free -= 1
            # The next in line may be admitted too when more permits are free.
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()

    @contextmanager
    def admitted(self, priority: int, wait_s: float | None = None) -> Iterator[None]:
        self.acquire(priority, wait_s)
        try:
            yield
        finally:
            self.release()


def _serve(conn: Connection, build: Callable[[], Any]) -> None:
    """A child's loop: build the engine once, then run one job per message until EOF."""
    engine = build()
    conn.send(("ready", None))
    while True:
        try:
            method, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", getattr(engine, method)(*args)))
        except RemovalError as exc:
            # Sent as fields: an exception with its own __init__ does not unpickle.
            conn.send(("removal_error", (exc.code, exc.message, exc.retry_after)))
        except Exception as exc:  # a boundary: the parent logs it and answers 503
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


@dataclass
class _Child:
    process: multiprocessing.process.BaseProcess
    conn: Connection


class EnginePool:
    """`processes` children, each running `build()`'s engine; `call()` runs one method."""

    def __init__(self, build: Callable[[], Any], processes: int, timeout_s: float) -> None:
        if processes < 1:
            raise ValueError("an engine pool needs at least one process")
        self.build = build
        self.processes = processes
        self.timeout_s = timeout_s
        self.admission = Admission(processes)
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start every child and wait until each has loaded its engine."""
        children = [self._spawn() for _ in range(self.processes)]
        for child in children:
            self._await_ready(child)
        with self._lock:
            self._idle.extend(children)

    def _spawn(self) -> _Child:
        parent, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child_end, self.build), name="cutout-engine", daemon=True
        )
        process.start()
        child_end.close()
        return _Child(process, parent)

    def _await_ready(self, child: _Child) -> None:
        if not child.conn.poll(START_TIMEOUT_S):
            self._kill(child)
            raise EngineFailedError("an engine process did not start in time")
        try:
            child.conn.recv()
        except EOFError:
            self._kill(child)
            raise EngineFailedError("an engine process died while starting") from None

    def _kill(self, child: _Child) -> None:
        child.process.kill()
        child.process.join(5)
        child.conn.close()

    def _replace(self, child: _Child) -> None:
        """Kill `child`; a new one takes its place once loaded (in the background, so the
        caller answers at once; its permit comes back only then)."""
        self._kill(child)

        def respawn() -> None:
            while not self._closed:
                try:
                    fresh = self._spawn()
                    self._await_ready(fresh)
                except EngineFailedError:
                    logger.exception("engine process failed to restart; trying again")
                    time.sleep(1)
                    continue
                with self._lock:
                    self._idle.append(fresh)
                self.admission.release()
                return

        threading.Thread(target=respawn, name="engine-respawn", daemon=True).start()

    def call(
        self, method: str, args: tuple, *, priority: int = PAID, wait_s: float | None = None
    ) -> Any:
        """`engine.method(*args)` in a free child. Raises what the engine raised (RemovalError),
        EngineTimeoutError past `timeout_s`, EngineBusyError after `wait_s` in the queue,
        EngineFailedError when the child died."""
        self.admission.acquire(priority, wait_s)
        with self._lock:
            child = self._idle.pop()
        healthy = False
        try:
            child.conn.send((method, args))
            if not child.conn.poll(self.timeout_s):
                logger.warning(
                    "engine job %s ran past %.0f s: its process is killed", method, self.timeout_s
                )
                raise EngineTimeoutError(f"the engine ran past {self.timeout_s:g} s")
            try:
                status, payload = child.conn.recv()
            except EOFError:
                raise EngineFailedError("the engine process died during the job") from None
            healthy = True
        except (BrokenPipeError, ConnectionResetError):
            raise EngineFailedError("the engine process died before the job") from None
        finally:
            if healthy:
                with self._lock:
                    self._idle.append(child)
                self.admission.release()
            else:
                self._replace(child)
        if status == "ok":
            return payload
        if status == "removal_error":
            code, message, retry_after = payload
            raise RemovalError(code, message, retry_after=retry_after)
        raise EngineFailedError(payload)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            children, self._idle = self._idle, []
        for child in children:
            child.conn.close()
            child.process.join(5)
            if child.process.is_alive():
                child.process.kill()
