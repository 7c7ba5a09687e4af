"""`LocalRemover`: the engine running on this machine, in two stages.

`analyse()` does the expensive part (decode, scale to `max_pixels`, segment) and returns a
`Cutout`; `render()` turns a Cutout into bytes for given options, cheaply and repeatably.
`remove()` is both, the `Remover` protocol that the APIs call.
"""

import math
import time
from pathlib import Path

import cv2
import numpy as np

from . import decode, refine, regions, registry, render, segment
from .types import Cutout, RemovalOptions, RemovalResult


def processing_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(w, h) scaled down, keeping the aspect ratio, to at most `max_pixels` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w = max(1, int(width * scale))
    new_h = max(1, int(height * scale))
    while new_w * new_h > max_pixels and (new_w > 1 or new_h > 1):
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    return new_w, new_h


class LocalRemover:
    """Thread-safe: one instance (one model session) serves every request of a process."""

    def __init__(
        self,
        model_path: Path | str,
        spec: registry.ModelSpec,
        threads: int = 2,
        warm: bool = True,
    ):
        self.spec = spec
        self.segmenter = segment.Segmenter(model_path, spec, threads=threads, warm=warm)

    @classmethod
    def from_name(
        cls,
        name: str,
        models_dir: Path | str,
        threads: int = 2,
        custom: dict[str, registry.ModelSpec] | None = None,
        warm: bool = True,
    ) -> "LocalRemover":
        spec = registry.get_spec(name, custom)
        return cls(spec.path(models_dir), spec, threads=threads, warm=warm)

    def analyse(self, data: bytes, options: RemovalOptions) -> Cutout:
        """Decode, scale to `options.max_pixels`, segment. Raises RemovalError on bad input.

        `Cutout.extra` holds `timings` (seconds per stage) and, when `max_pixels` scaled the
        image down, `full_rgb` and `full_input_alpha` (the oriented input at full size, for
        the Delta PNG)."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        decoded = decode.decode(data)
        t1 = time.perf_counter()
        timings["decode"] = t1 - t0
        full_rgb, full_alpha = decoded.rgb, decoded.alpha
        full_h, full_w = full_rgb.shape[:2]
        extra: dict = {"timings": timings}
        work_w, work_h = processing_size(full_w, full_h, options.max_pixels)
        if (work_w, work_h) != (full_w, full_h):
            rgb = cv2.resize(full_rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)
            input_alpha = None
            if full_alpha is not None:
                input_alpha = cv2.resize(full_alpha, (work_w, work_h), interpolation=cv2.INTER_AREA)
            # Kept for the Delta PNG, which is always at the input's full size.
            extra["full_rgb"] = full_rgb
            extra["full_input_alpha"] = full_alpha
        else:
            rgb, input_alpha = full_rgb, full_alpha
        t2 = time.perf_counter()
        timings["scale"] = t2 - t1
        alpha = self.segment(rgb, input_alpha, options, timings, full_size=(full_w, full_h))
        return Cutout(
            rgb=rgb,
            alpha=alpha,
            full_size=(full_w, full_h),
            orientation=decoded.info.orientation,
            source_format=decoded.info.format,
            extra=extra,
        )

    def segment(
        self,
        rgb: np.ndarray,
        input_alpha: np.ndarray | None,
        options: RemovalOptions,
        timings: dict[str, float] | None = None,
        full_size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """uint8 alpha at `rgb`'s size, never above the input's own alpha. With
        `options.regions` (in the pixels of `full_size`, the input before scaling) only the
        regions can be foreground, each segmented on its own crop (regions.py)."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        if options.regions:
            size = full_size or (rgb.shape[1], rgb.shape[0])
            prob = regions.segment(rgb, input_alpha, options.regions, size, self._predict_map)
            t1 = t2 = time.perf_counter()
        else:
            # Preprocessing is inside refine.predict (one or two framings), so it counts as
            # inference here.
            t1 = time.perf_counter()
            size = self.spec.input_size
            prob_lowres = refine.predict(self.segmenter.predict, rgb, input_alpha, size)
            t2 = time.perf_counter()
            prob = refine.upsample(prob_lowres, rgb)
        alpha = segment.to_alpha(prob, raw=options.raw)
        if input_alpha is not None:
            cv2.min(alpha, input_alpha, dst=alpha)
        t3 = time.perf_counter()
        timings.update(preprocess=t1 - t0, inference=t2 - t1, upsample=t3 - t2)
        return alpha

    def _predict_map(self, rgb: np.ndarray, input_alpha: np.ndarray | None) -> np.ndarray:
        """The model's map for one crop, at the crop's size (for regions.segment)."""
        size = self.spec.input_size
        return refine.upsample(refine.predict(self.segmenter.predict, rgb, input_alpha, size), rgb)

    def render(self, cutout: Cutout, options: RemovalOptions) -> RemovalResult:
        return render.render(cutout, options)

    def remove(self, data: bytes, options: RemovalOptions) -> RemovalResult:
        return self.render(self.analyse(data, options), options)
