"""Which `Remover` serves this process, built from settings (the engine itself never reads them).

`get_remover()` builds the engine lazily on first use and keeps it for the life of the process
(one model session per process, shared by every thread). Nothing here runs at import time, so
management commands and migrations never need the model.
"""

import threading

from django.conf import settings

from removal.engine import registry
from removal.engine.local import LocalRemover
from removal.engine.segment import ModelMissingError
from removal.engine.types import Remover

_lock = threading.Lock()
_remover: Remover | None = None


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


def build_local() -> LocalRemover:
    try:
        return LocalRemover.from_name(
            settings.CUTOUT_MODEL,
            settings.CUTOUT_MODELS_DIR,
            threads=settings.CUTOUT_INFERENCE_THREADS,
            custom=custom_models(),
        )
    except (ModelMissingError, registry.UnknownModelError) as exc:
        raise EngineUnavailableError(str(exc)) from exc


def build_remover() -> Remover:
    engine = getattr(settings, "CUTOUT_ENGINE", "local")
    if engine == "local":
        return build_local()
    raise EngineUnavailableError(f"engine {engine!r} is not available in this build")


def get_remover() -> Remover:
    """The process-wide Remover, built on first call (thread-safe)."""
    global _remover
    if _remover is None:
        with _lock:
            if _remover is None:
                _remover = build_remover()
    return _remover
