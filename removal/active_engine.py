"""Which `Remover` serves this process, built from settings (the engine itself never reads them).

The service code calls `remove()`, `analyse()` and `render()` here, never an engine directly:
with `CUTOUT_ENGINE_PROCESSES` > 0 the local engine runs in a pool of engine processes
(removal/engine/pool.py) where a job past `CUTOUT_ENGINE_TIMEOUT_S` is killed, paid work is
admitted ahead of free work, and a web worker's threads only wait; with 0 it runs in this
process (development, the test suite). `get_local()` builds the in-process engine lazily
and keeps it for the life of the process (one model session, shared by every thread).
In reseller mode (`CUTOUT_ENGINE=pixian`) the engine is `removal/upstream/engine.py`'s, in
the web process (its work is mostly waiting on the upstream), with the local engine as its
fallback when `CUTOUT_RESELLER_FALLBACK=local`.
Nothing here runs at import time, so management commands and migrations never need the model.
"""

import functools
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings

from removal import errors
from removal.engine import pool, registry
from removal.engine.local import LocalRemover
from removal.engine.segment import ModelMissingError, PrecisionUnavailableError
from removal.engine.types import Cutout, RemovalContext, RemovalOptions, RemovalResult, Remover
from removal.errors import RemovalError

_lock = threading.Lock()
_remover: Remover | None = None
_pool: pool.EnginePool | None = None


class EngineUnavailableError(RuntimeError):
    """The configured engine cannot start (model not installed, unknown model, ...)."""


def custom_models() -> dict[str, registry.ModelSpec]:
    """An operator's own ONNX model, declared in settings (CUTOUT_CUSTOM_MODEL_*)."""
    filename = getattr(settings, "CUTOUT_CUSTOM_MODEL_FILE", "")
    if not filename:
        return {}
    name = getattr(settings, "CUTOUT_MODEL", "custom")
    normalisation = getattr(settings, "CUTOUT_CUSTOM_MODEL_NORMALISATION", "imagenet")
    if normalisation not in registry.NORMALISATIONS:
        known = ", ".join(registry.NORMALISATIONS)
        raise EngineUnavailableError(
            f"CUTOUT_CUSTOM_MODEL_NORMALISATION must be one of {known}, not {normalisation!r}"
        )
    mean, std, divide_by_max = registry.NORMALISATIONS[normalisation]
    spec = registry.custom_spec(
        name,
        filename,
        input_size=getattr(settings, "CUTOUT_CUSTOM_MODEL_INPUT_SIZE", 1024),
        mean=mean,
        std=std,
        divide_by_max=divide_by_max,
    )
    return {name: spec}


def local_factory() -> Callable[[], LocalRemover]:
    """The local engine's constructor with its settings bound (picklable: an engine process
    builds its own engine with it).

    onnxruntime's threads spin while they wait for work, which is only free when they have
    the cores to themselves: when the engine processes' threads outnumber the cores, a
    spinning thread takes the core another process needs, so they sleep instead."""
    threads = settings.CUTOUT_INFERENCE_THREADS
    return functools.partial(
        LocalRemover.from_name,
        settings.CUTOUT_MODEL,
        settings.CUTOUT_MODELS_DIR,
        threads=threads,
        custom=custom_models(),
        spinning=max(1, settings.CUTOUT_ENGINE_PROCESSES) * threads <= settings.CUTOUT_CORES,
        precision=settings.CUTOUT_INFERENCE_PRECISION,
    )


def check_model() -> None:
    """EngineUnavailableError for an unknown or uninstalled model, without loading it."""
    try:
        spec = registry.get_spec(settings.CUTOUT_MODEL, custom_models())
    except registry.UnknownModelError as exc:
        raise EngineUnavailableError(str(exc)) from exc
    if not spec.path(settings.CUTOUT_MODELS_DIR).is_file():
        raise EngineUnavailableError(
            f"model file {spec.path(settings.CUTOUT_MODELS_DIR)} is missing: run "
            f"`python manage.py install_model {spec.name}`"
        )


def build_local() -> LocalRemover:
    try:
        return local_factory()()
    except (ModelMissingError, PrecisionUnavailableError, registry.UnknownModelError) as exc:
        raise EngineUnavailableError(str(exc)) from exc


def fallback_enabled() -> bool:
    return settings.CUTOUT_ENGINE == "pixian" and settings.CUTOUT_RESELLER_FALLBACK == "local"


def get_local() -> Remover:
    """The process-wide local engine, built on first call (thread-safe); in reseller mode
    only when the fallback is on (CUTOUT_RESELLER_FALLBACK=local)."""
    global _remover
    if _remover is None:
        with _lock:
            if _remover is None:
                _remover = build_local()
    return _remover


def build_upstream() -> Remover:
    """Reseller mode's engine: a few settings around the process's upstream client (which
    removal/upstream/client.py keeps), so it is built afresh for each call."""
    from removal.upstream.engine import UpstreamRemover

    return UpstreamRemover(
        settings.SECRET_KEY,
        fallback=get_local if fallback_enabled() else None,
        fallback_s=settings.CUTOUT_ENGINE_TIMEOUT_S,
        request_s=settings.CUTOUT_REQUEST_TIMEOUT_S,
    )


def build_remover() -> Remover:
    """A new engine as `CUTOUT_ENGINE` says."""
    engine = getattr(settings, "CUTOUT_ENGINE", "local")
    if engine == "local":
        return build_local()
    if engine == "pixian":
        return build_upstream()
    raise EngineUnavailableError(f"engine {engine!r} is not available in this build")


def get_remover() -> Remover:
    """The engine that serves this process's calls (`CUTOUT_ENGINE`): the local engine is
    built once per process."""
    if getattr(settings, "CUTOUT_ENGINE", "local") == "pixian":
        return build_upstream()
    return get_local()


def uses_pool() -> bool:
    return settings.CUTOUT_ENGINE_PROCESSES > 0 and settings.CUTOUT_ENGINE == "local"


def get_pool() -> pool.EnginePool:
    """The process-wide pool of engine processes, started (and warm) on first call."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                check_model()
                started = pool.EnginePool(
                    local_factory(),
                    settings.CUTOUT_ENGINE_PROCESSES,
                    settings.CUTOUT_ENGINE_TIMEOUT_S,
                )
                try:
                    started.start()
                except pool.EngineFailedError as exc:
                    raise EngineUnavailableError(str(exc)) from exc
                _pool = started
    return _pool


def warm() -> None:
    """Load the engine (or start the pool) before the first request needs it."""
    if uses_pool():
        get_pool()
    else:
        get_remover()
    if fallback_enabled():
        get_local()


def _run(method: str, args: tuple, free: bool) -> Any:
    if not uses_pool():
        return getattr(get_remover(), method)(*args)
    try:
        return get_pool().call(
            method,
            args,
            priority=pool.FREE if free else pool.PAID,
            wait_s=settings.CUTOUT_REQUEST_TIMEOUT_S,
        )
    except pool.EngineTimeoutError:
        raise RemovalError(errors.ENGINE_TIMEOUT) from None
    except pool.EngineBusyError:
        raise RemovalError(errors.ENGINE_BUSY, retry_after=5) from None
    except pool.EngineFailedError as exc:
        raise RemovalError(errors.ENGINE_FAILED, retry_after=1) from exc


def remove(
    data: bytes,
    options: RemovalOptions,
    context: RemovalContext | None = None,
    *,
    free: bool = False,
) -> RemovalResult:
    """The configured engine's `remove`; `free` work (test mode) queues behind paid work.
    Raises RemovalError: the engine's own, 5041 past CUTOUT_ENGINE_TIMEOUT_S, 5031/5032."""
    return _run("remove", (data, options, context), free)


def analyse(
    data: bytes,
    options: RemovalOptions,
    context: RemovalContext | None = None,
    *,
    free: bool = False,
) -> Cutout:
    return _run("analyse", (data, options, context), free)


def render(cutout: Cutout, options: RemovalOptions, *, free: bool = False) -> RemovalResult:
    return _run("render", (cutout, options), free)
