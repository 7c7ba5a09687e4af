"""Framing and alpha variants scored on the three shared sets from cached maps.

    .venv/bin/python bench/views_cache.py --model u2netp     # once: both views of every photo
    .venv/bin/python bench/alpha_study.py --model u2netp [--variant NAME ...]

Each variant turns a photo's two cached maps (stretched, letterboxed; `bench/views_cache.py`)
into an 8-bit alpha at the photo's size with the engine's own functions (refine, solidify,
segment.to_alpha) and is scored per photo with the metrics of
``$CUTOUT_SHARED_DIR/tools/eval_quality.py`` (the same function its command line runs). A
research tool: the numbers in docs/BENCHMARKS.md come from `bench/quality.py`, which runs
the real engine on the photos.
"""

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import SETS, set_images, shared_dir, views_dir  # noqa: E402

from removal.engine import refine, segment, solidify  # noqa: E402

# (stretched map, letterboxed map, an array of the photo's shape) -> (map, inferences)
Variant = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, int]]


def load_scorer() -> Callable[..., dict[str, float]]:
    path = shared_dir() / "tools" / "eval_quality.py"
    spec = importlib.util.spec_from_file_location("eval_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metrics


def union(s: np.ndarray, b: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, int]:
    return (s, 1) if refine.is_square(photo.shape) else (np.maximum(s, b), 2)


def stretched(s: np.ndarray, b: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, int]:
    return s, 1


def boxed(s: np.ndarray, b: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, int]:
    return (s, 1) if refine.is_square(photo.shape) else (b, 1)


def gated(s: np.ndarray, b: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, int]:
    """refine.predict: the stretched view, or both views' union when it is in doubt."""
    if not refine.needs_second_view(s, photo.shape):
        return s, 1
    return refine.combine(s, b), 2


def gated_surer(s: np.ndarray, b: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, int]:
    """The same gate, but the surer whole map (`refine.doubt`) when both ran (the engine's
    choice before the u2net rows were measured)."""
    if not refine.needs_second_view(s, photo.shape):
        return s, 1
    return (b if refine.doubt(b) < refine.doubt(s) else s), 2


def solid(inner: Variant, *bands: float) -> Variant:
    """`inner` then solidify, with its default bands or (band_in, ramp_in, band_out,
    ramp_out)."""

    def variant(s: np.ndarray, b: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, int]:
        prob, cost = inner(s, b, photo)
        return solidify.solidify(prob, *bands), cost

    return variant


VARIANTS: dict[str, Variant] = {
    "union": union,
    "stretched": stretched,
    "boxed": boxed,
    "gated": gated,
    "gated-surer": gated_surer,
    "solid-union": solid(union),
    "solid-stretched": solid(stretched),
    "solid-gated": solid(gated),
    "solid-gated-surer": solid(gated_surer),
}
BANDS = ((3, 3, 3, 3), (1, 2, 3, 3), (2, 2, 3, 3), (2, 2, 6, 6), (3, 3, 6, 6), (3, 3, 10, 10))
for _bands in BANDS:
    VARIANTS["solid-gated-" + "-".join(map(str, _bands))] = solid(gated, *_bands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--set", action="append", choices=SETS)
    args = parser.parse_args()
    metrics = load_scorer()
    keys = ("iou", "mae", "biou", "holes", "ghost")
    print("| set | variant | IoU | MAE | bIoU | holes | ghost | inferences/photo |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.set or SETS:
        folder = shared_dir() / "eval" / name
        cache = views_dir(args.model, "f32", name)
        photos = []
        for path in set_images(folder):
            maps = np.load(cache / f"{path.stem}.npz")
            gt = np.asarray(Image.open(folder / "masks" / f"{path.stem}.png").convert("L"))
            rgb_like = np.empty((*gt.shape, 3), np.uint8)
            s = maps["stretched"].astype(np.float32)
            b = maps["boxed"].astype(np.float32)
            photos.append((s, b, rgb_like, gt.astype(np.float32) / 255.0))
        for variant in args.variant or ["union", "stretched", "solid-gated"]:
            rows, costs = [], []
            for s, b, rgb_like, gt in photos:
                prob, cost = VARIANTS[variant](s, b, rgb_like)
                alpha = segment.to_alpha(refine.upsample(prob, rgb_like))
                rows.append(metrics(alpha.astype(np.float32) / 255.0, gt, None))
                costs.append(cost)
            mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
            print(
                f"| {name} | {variant} | {mean['iou']:.4f} | {mean['mae']:.4f} | "
                f"{mean['biou']:.4f} | {mean['holes']:.4f} | {mean['ghost']:.4f} | "
                f"{np.mean(costs):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
