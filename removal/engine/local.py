"""`LocalRemover`: the engine running on this machine.

`analyse()` does the expensive part (decode, scale to `max_pixels`, segment) and returns a
`Cutout`; rendering and `remove()` are every engine's (base.py).
"""

import functools
import time
from pathlib import Path

import cv2
import numpy as np

from . import cutouts, refine, regions, registry, segment, solidify
from .base import Engine
from .types import Cutout, RemovalContext, RemovalOptions

# From this many pixels of processing size, the model's arena is given back to the OS after
# each run, before the image's own work (upsampling, colour estimation, encoding) needs the
# memory: that keeps the peak of a large request low. Below it the arena is kept, so the next
# request does not pay for faulting it back in (measured in docs/BENCHMARKS.md, "The
# segmenter's memory options").
RELEASE_ARENA_PIXELS = 4_000_000


class LocalRemover(Engine):
    """Thread-safe: one instance (one model session) serves every request of a process."""

    name = "local"

    def __init__(
        self,
        model_path: Path | str,
        spec: registry.ModelSpec,
        threads: int = 2,
        warm: bool = True,
        spinning: bool = True,
        release_arena_pixels: int = RELEASE_ARENA_PIXELS,
        precision: str = "auto",
    ) -> None:
        self.spec = spec
        self.release_arena_pixels = release_arena_pixels
        self.segmenter = segment.Segmenter(
            model_path, spec, threads=threads, warm=warm, spinning=spinning, precision=precision
        )

    @classmethod
    def from_name(
        cls,
        name: str,
        models_dir: Path | str,
        threads: int = 2,
        custom: dict[str, registry.ModelSpec] | None = None,
        warm: bool = True,
        spinning: bool = True,
        precision: str = "auto",
    ) -> "LocalRemover":
        spec = registry.get_spec(name, custom)
        return cls(
            spec.path(models_dir),
            spec,
            threads=threads,
            warm=warm,
            spinning=spinning,
            precision=precision,
        )

    def analyse(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> Cutout:
        """Decode, scale to `options.max_pixels`, segment. Raises RemovalError on bad input.
        `Cutout.timings` has the seconds each stage took."""
        prepared = cutouts.prepare(data, options.max_pixels)
        alpha = self.segment(
            prepared.rgb,
            prepared.input_alpha,
            options,
            prepared.timings,
            full_size=prepared.full_size,
        )
        return prepared.cutout(alpha)

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
        regions can be foreground, each segmented on its own crop (regions.py). Unless
        `options.raw`, the map is solidified (solidify.py) before it is upsampled."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        if options.regions:
            size = full_size or (rgb.shape[1], rgb.shape[0])
            predict_map = functools.partial(self._predict_map, solid=not options.raw)
            prob = regions.segment(rgb, input_alpha, options.regions, size, predict_map)
            t1 = t2 = time.perf_counter()
        else:
            # Preprocessing is inside refine.predict (one or two framings), so it counts as
            # inference here.
            t1 = time.perf_counter()
            prob_lowres = self._predict_lowres(rgb, input_alpha, solid=not options.raw)
            t2 = time.perf_counter()
            prob = refine.upsample(prob_lowres, rgb)
        alpha = segment.to_alpha(prob, raw=options.raw)
        if input_alpha is not None:
            cv2.min(alpha, input_alpha, dst=alpha)
        t3 = time.perf_counter()
        timings.update(preprocess=t1 - t0, inference=t2 - t1, upsample=t3 - t2)
        return alpha

    def _predict_lowres(
        self, rgb: np.ndarray, input_alpha: np.ndarray | None, solid: bool
    ) -> np.ndarray:
        """The model's map at its own resolution (framing chosen by refine.predict),
        solidified unless `solid` is false."""
        release = rgb.shape[0] * rgb.shape[1] >= self.release_arena_pixels
        predict = functools.partial(self.segmenter.predict, release=release)
        prob = refine.predict(predict, rgb, input_alpha, self.spec.input_size)
        return solidify.solidify(prob) if solid else prob

    def _predict_map(
        self, rgb: np.ndarray, input_alpha: np.ndarray | None, solid: bool = True
    ) -> np.ndarray:
        """The model's map for one crop, at the crop's size (for regions.segment)."""
        return refine.upsample(self._predict_lowres(rgb, input_alpha, solid), rgb)
