"""Cut-out quality on the three shared sets: the engine against the two earlier pipelines
(and rembg), with a bootstrap interval of the per-photo difference.

    .venv/bin/python bench/views_cache.py --model u2netp          # optional: reuse both views
    .venv/bin/python bench/quality_sets.py --model u2netp [--pipeline rembg]
    .venv/bin/python bench/quality_sets.py --model u2net --precision f32 --cutout-from-cache

Pipelines, each writing one 8-bit alpha PNG per photo to
``var/bench/sets/<model>-<precision>[-from-cache]/<set>/<pipeline>/``:

- ``cutout``: the engine as it is (`LocalRemover.analyse`, the code the APIs run), in the
  precision the engine's setting picks on this machine (``--precision``, default ``auto``); its
  inferences are counted per photo; with ``--cutout-from-cache``, built from views_cache.py's
  maps of that precision with the engine's own steps;
- ``union``: the default before issue 15, the per-pixel maximum of the stretched and the
  letterboxed view (one view for a square photo), upsampled and snapped;
- ``stretched``: the stretched view alone, upsampled and snapped;
- ``rembg`` (only when asked): ``rembg.remove(only_mask=True)`` on the same ONNX file, in
  ``bench/.venv-rembg`` (``bench/setup_rembg.sh``); kept between runs once a set is complete
  (delete the folder to run rembg again).

``union`` and ``stretched`` (always float32, as the issue measured them) are built from the
engine's own functions (`refine.stretched_view`,
`refine.letterboxed_view`, `refine.upsample`, `segment.to_alpha`) on the photo as
`cutouts.prepare` decodes it; they reuse ``bench/views_cache.py``'s maps when present (the
same functions, run once). Scores come only from ``$CUTOUT_SHARED_DIR/tools/eval_quality.py``
(its per-photo CSV). For each set the table gives, against the better of ``union`` and
``stretched`` on that set (per metric), the mean per-photo difference of ``cutout`` and its
95 % bootstrap interval (1,000 resamples of the photos, seed 15 for each set).
"""

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import SETS, predict_rembg, set_images, shared_dir, views_dir  # noqa: E402

from removal.engine import cutouts, refine, registry, segment, solidify  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402

METRICS = ("iou", "mae", "biou", "holes", "ghost")
HIGHER_IS_BETTER = {"iou": True, "mae": False, "biou": True, "holes": False, "ghost": False}
RESAMPLES = 1000
# The two earlier pipelines as the issue measured them: snapped to 0 at or below 24, the
# engine's setting then (segment.SNAP_LOW is 51 since the third round).
ISSUE_SNAP_LOW = 24


def save(alpha: np.ndarray, path: Path) -> None:
    Image.fromarray(np.ascontiguousarray(alpha), "L").save(path)


def predict_cutout(engine: LocalRemover, images: list[Path], out: Path) -> tuple[float, float]:
    """The engine's alphas; returns (inferences per photo, seconds per photo)."""
    calls = 0
    predict = engine.segmenter.predict

    def counting(
        rgb: np.ndarray, alpha: np.ndarray | None = None, release: bool = True
    ) -> np.ndarray:
        nonlocal calls
        calls += 1
        return predict(rgb, alpha, release)

    engine.segmenter.predict = counting  # an instance attribute: counts, changes nothing
    options = RemovalOptions(output_format="png")
    started = time.perf_counter()
    try:
        for path in images:
            save(engine.analyse(path.read_bytes(), options).alpha, out / f"{path.stem}.png")
    finally:
        del engine.segmenter.predict
    return calls / len(images), (time.perf_counter() - started) / len(images)


def cutout_from_maps(
    stretched: np.ndarray, boxed: np.ndarray, rgb: np.ndarray, alpha: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """What `LocalRemover.segment` makes of the two views' maps (refine.predict's gate and
    combination, solidify, upsample, snap, never above the input's alpha), and the
    inferences it took, for ``--cutout-from-cache``."""
    prob, inferences = stretched, 1
    if refine.needs_second_view(stretched, rgb.shape):
        prob, inferences = refine.combine(stretched, boxed), 2
    out = segment.to_alpha(refine.upsample(solidify.solidify(prob), rgb))
    return (out if alpha is None else np.minimum(out, alpha)), inferences


def load_views(
    engine: LocalRemover, cache: Path, path: Path, rgb: np.ndarray, alpha: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """A photo's stretched and letterboxed maps: from ``cache`` when views_cache.py made them,
    else from `engine`."""
    cached = cache / f"{path.stem}.npz"
    if cached.exists():
        maps = np.load(cached)
        return maps["stretched"].astype(np.float32), maps["boxed"].astype(np.float32)
    predict = engine.segmenter.predict
    stretched = refine.stretched_view(predict, rgb, alpha)
    size = engine.spec.input_size
    return stretched, refine.letterboxed_view(predict, rgb, alpha, size, stretched.shape)


def predict_views(
    engine: LocalRemover, images: list[Path], cache: Path, outs: dict[str, Path]
) -> float:
    """The ``union`` and ``stretched`` pipelines' alphas (float32 maps); returns the union's
    inferences per photo."""
    views = 0
    for path in images:
        prepared = cutouts.prepare(path.read_bytes(), RemovalOptions().max_pixels)
        rgb, alpha = prepared.rgb, prepared.input_alpha
        stretched, boxed = load_views(engine, cache, path, rgb, alpha)
        square = refine.is_square(rgb.shape)
        views += 1 if square else 2
        union = stretched if square else np.maximum(stretched, boxed)
        for name, prob in (("union", union), ("stretched", stretched)):
            out = segment.to_alpha(refine.upsample(prob, rgb), snap_low=ISSUE_SNAP_LOW)
            if alpha is not None:
                out = np.minimum(out, alpha)
            save(out, outs[name] / f"{path.stem}.png")
    return views / len(images)


def cutout_from_cache(engine: LocalRemover, images: list[Path], cache: Path, out: Path) -> float:
    """The ``cutout`` pipeline's alphas from cached maps in the engine's precision (made by
    `engine` where missing); returns its inferences per photo."""
    total = 0
    for path in images:
        prepared = cutouts.prepare(path.read_bytes(), RemovalOptions().max_pixels)
        rgb, alpha = prepared.rgb, prepared.input_alpha
        stretched, boxed = load_views(engine, cache, path, rgb, alpha)
        cut, inferences = cutout_from_maps(stretched, boxed, rgb, alpha)
        save(cut, out / f"{path.stem}.png")
        total += inferences
    return total / len(images)


def score(gt: Path, pred: Path) -> dict[str, dict[str, float]]:
    """Per-photo metrics from eval_quality.py's CSV, by photo name."""
    tool = shared_dir() / "tools" / "eval_quality.py"
    table = pred.parent / f"{pred.name}.csv"
    subprocess.run(
        [sys.executable, str(tool), "--gt", str(gt), "--pred", str(pred), "--csv", str(table)],
        check=True,
        capture_output=True,
    )
    with table.open() as fh:
        return {row["name"]: {k: float(row[k]) for k in METRICS} for row in csv.DictReader(fh)}


def bootstrap(diff: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The 95 % percentile interval of the mean of `diff` over resampled photos."""
    picks = rng.integers(0, len(diff), size=(RESAMPLES, len(diff)))
    means = diff[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--set", action="append", choices=SETS)
    parser.add_argument("--pipeline", action="append", choices=["rembg"], help="extra pipelines")
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--limit", type=int, help="only the first N photos of each set, by name")
    parser.add_argument(
        "--cutout-from-cache",
        action="store_true",
        help="build the cutout pipeline's alphas from views_cache.py's maps (no inference)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=segment.PRECISIONS,
        help="the cutout pipeline's (the engine's setting); union and stretched are float32",
    )
    args = parser.parse_args()
    models_dir = Path(args.models_dir).resolve()
    spec = registry.get_spec(args.model)
    precision = segment.resolve_precision(args.precision, spec)
    engine = LocalRemover(spec.path(models_dir), spec, threads=2, precision="f32")
    cutout_engine = engine
    if precision != "f32":
        cutout_engine = LocalRemover(spec.path(models_dir), spec, threads=2, precision=precision)
    print(f"{args.model}: the cutout pipeline in {precision}", file=sys.stderr, flush=True)
    lines = [
        "| set | pipeline | IoU | MAE | boundary IoU | holes | ghost | inferences/photo |",
        "|---|---|---|---|---|---|---|---|",
    ]
    deltas = []
    for name in args.set or SETS:
        folder = shared_dir() / "eval" / name
        images = set_images(folder)[: args.limit]
        run = f"{args.model}-{precision}" + ("-from-cache" if args.cutout_from_cache else "")
        root = ROOT / "var" / "bench" / "sets" / run / name
        pipelines = ["cutout", "union", "stretched", *(args.pipeline or [])]
        outs = {p: root / p for p in pipelines}
        if "rembg" in outs:  # shared by the live and the cached runs of the model
            outs["rembg"] = ROOT / "var" / "bench" / "sets" / args.model / name / "rembg"
        for p, out in outs.items():
            if p != "rembg":
                shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
        seconds = float("nan")
        if args.cutout_from_cache:
            cache = views_dir(args.model, precision, name)
            cost = cutout_from_cache(cutout_engine, images, cache, outs["cutout"])
        else:
            cost, seconds = predict_cutout(cutout_engine, images, outs["cutout"])
        union_cost = predict_views(engine, images, views_dir(args.model, "f32", name), outs)
        costs = {"cutout": cost, "union": union_cost}
        costs["stretched"] = 1.0
        if "rembg" in outs:
            # rembg's alphas do not depend on Cutout's code: made once per set and model.
            if {p.stem for p in images} - {p.stem for p in outs["rembg"].glob("*.png")}:
                predict_rembg(args.model, models_dir, folder / "images", outs["rembg"])
            costs["rembg"] = 1.0
        scores = {p: score(folder / "masks", out) for p, out in outs.items()}
        names = sorted(scores["cutout"])
        for p in pipelines:
            mean = {k: np.mean([scores[p][n][k] for n in names]) for k in METRICS}
            lines.append(
                f"| {name} (n={len(names)}) | {p} | {mean['iou']:.4f} | {mean['mae']:.4f} | "
                f"{mean['biou']:.4f} | {mean['holes']:.4f} | {mean['ghost']:.4f} | "
                f"{costs[p]:.2f} |"
            )
        rng = np.random.default_rng(15)  # per set: a set's intervals do not depend on the others
        for k in METRICS:
            means = {p: np.mean([scores[p][n][k] for n in names]) for p in ("union", "stretched")}
            pick = max if HIGHER_IS_BETTER[k] else min
            better = pick(means, key=means.get)
            diff = np.array([scores["cutout"][n][k] - scores[better][n][k] for n in names])
            low, high = bootstrap(diff, rng)
            worse = high < 0 if HIGHER_IS_BETTER[k] else low > 0
            deltas.append(
                f"| {name} | {k} | {better} | {diff.mean():+.4f} | [{low:+.4f}, {high:+.4f}] | "
                f"{'**worse**' if worse else 'holds'} |"
            )
        print(f"{name}: done, cutout {seconds:.2f} s/photo", file=sys.stderr, flush=True)
    print("\n".join(lines))
    print()
    print("| set | metric | against | mean difference | 95 % interval | verdict |")
    print("|---|---|---|---|---|---|")
    print("\n".join(deltas))


if __name__ == "__main__":
    main()
