"""int8 against float weights on the three shared sets: the same engine, only the model file.

    .venv/bin/python bench/quantize_u2net.py --model u2net          # var/models/u2net-int8.onnx
    CUTOUT_SHARED_DIR=/work/shared nice -n 5 .venv/bin/python bench/int8_sets.py --model u2net

Both engines are `LocalRemover` (the code the APIs run) with the same spec; the int8 one loads
`<model>-int8.onnx`. Each photo's alpha is scored with the shared scorer (bench/quality_sets.py's
`score`), and per set the table gives both means and the 95 % bootstrap interval of the
per-photo difference int8 - float (1,000 resamples, seed 15). int8 "holds" on a set when the
interval does not lie below zero for IoU and boundary IoU nor above zero for MAE, holes, ghost.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import SETS, set_images, shared_dir  # noqa: E402
from quality_sets import HIGHER_IS_BETTER, METRICS, bootstrap, save, score  # noqa: E402

from removal.engine import registry  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--set", action="append", choices=SETS)
    args = parser.parse_args()
    models = ROOT / "var" / "models"
    spec = registry.get_spec(args.model)
    engines = {
        "float": LocalRemover(spec.path(models), spec, threads=2),
        "int8": LocalRemover(models / f"{args.model}-int8.onnx", spec, threads=2),
    }
    rng = np.random.default_rng(15)
    lines = ["| set | weights | IoU | MAE | boundary IoU | holes | ghost | s/photo |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    deltas = ["| set | metric | int8 - float | 95 % interval | verdict |", "|---|---|---|---|---|"]
    options = RemovalOptions(output_format="png")
    for name in args.set or SETS:
        folder = shared_dir() / "eval" / name
        images = set_images(folder)
        root = ROOT / "var" / "bench" / "int8" / args.model / name
        scores, seconds = {}, {}
        for weights, engine in engines.items():
            out = root / weights
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            started = time.perf_counter()
            for path in images:
                save(engine.analyse(path.read_bytes(), options).alpha, out / f"{path.stem}.png")
            seconds[weights] = (time.perf_counter() - started) / len(images)
            scores[weights] = score(folder / "masks", out)
        photos = sorted(scores["float"])
        for weights in engines:
            mean = {k: np.mean([scores[weights][n][k] for n in photos]) for k in METRICS}
            lines.append(
                f"| {name} (n={len(photos)}) | {weights} | {mean['iou']:.4f} | {mean['mae']:.4f} "
                f"| {mean['biou']:.4f} | {mean['holes']:.4f} | {mean['ghost']:.4f} "
                f"| {seconds[weights]:.2f} |"
            )
        for k in METRICS:
            diff = np.array([scores["int8"][n][k] - scores["float"][n][k] for n in photos])
            low, high = bootstrap(diff, rng)
            worse = high < 0 if HIGHER_IS_BETTER[k] else low > 0
            deltas.append(
                f"| {name} | {k} | {diff.mean():+.4f} | [{low:+.4f}, {high:+.4f}] | "
                f"{'**worse**' if worse else 'holds'} |"
            )
        print(f"{name}: done", file=sys.stderr, flush=True)
    print("\n".join(lines))
    print()
    print("\n".join(deltas))


if __name__ == "__main__":
    main()
