"""What the clean edges cost: foreground colour estimation against the whole pipeline at 4 MP.

    .venv/bin/python bench/edges.py --model u2netp --runs 5

For each photo (the dev set's first --photos images, found through CUTOUT_SHARED_DIR, default
../shared, upscaled to 4 MP and sent as JPEG; skimage's photos when the set is absent) it times
warm runs of the whole removal (`LocalRemover.remove`, which includes the estimation) for
delta_png and png output, and `compose.estimate_foreground` alone on the same cut-out, then
prints medians and the estimation's share of each pipeline as a Markdown table. Timings are
wall-clock with the engine's 2 inference threads; the machine is shared, so compare the shares,
which are measured in the same run.
"""

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from removal.engine import compose  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402


def photos(count: int, pixels: int) -> list[tuple[str, bytes]]:
    shared = Path(os.environ.get("CUTOUT_SHARED_DIR", ROOT.parent / "shared"))
    folder = shared / "eval" / "dev" / "images"
    if folder.is_dir():
        sources = [
            (p.name, np.asarray(Image.open(p).convert("RGB"))) for p in sorted(folder.iterdir())
        ]
    else:
        from skimage import data

        sources = [(n, getattr(data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    out = []
    for name, rgb in sources[:count]:
        scale = (pixels / (rgb.shape[0] * rgb.shape[1])) ** 0.5
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, "JPEG", quality=90)
        out.append((name, buf.getvalue()))
    return out


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--megapixels", type=float, default=4.0)
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    args = parser.parse_args()

    engine = LocalRemover.from_name(args.model, args.models_dir, threads=2)
    delta, png = RemovalOptions(output_format="delta_png"), RemovalOptions(output_format="png")
    rows = []
    for name, data in photos(args.photos, int(args.megapixels * 1_000_000)):
        cutout = engine.analyse(data, png)
        engine.remove(data, delta)  # warm
        soft = float(((cutout.alpha > 0) & (cutout.alpha < 255)).mean())
        t_delta = timed(lambda d=data: engine.remove(d, delta), args.runs)
        t_png = timed(lambda d=data: engine.remove(d, png), args.runs)
        t_edges = timed(
            lambda c=cutout: compose.estimate_foreground(c.rgb, c.alpha), max(args.runs, 5)
        )
        rows.append((name, cutout.alpha.shape, soft, t_edges, t_delta, t_png))

    print(f"model {args.model}, {args.megapixels:g} MP, median of {args.runs} warm runs\n")
    print(
        "| photo | size | soft pixels | estimation | delta_png pipeline | share | "
        "png pipeline | share |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, shape, soft, t_edges, t_delta, t_png in rows:
        print(
            f"| {name} | {shape[1]}x{shape[0]} | {soft:.1%} | {t_edges * 1000:.0f} ms | "
            f"{t_delta * 1000:.0f} ms | {t_edges / t_delta:.0%} | {t_png * 1000:.0f} ms | "
            f"{t_edges / t_png:.0%} |"
        )
    shares_delta = [r[3] / r[4] for r in rows]
    shares_png = [r[3] / r[5] for r in rows]
    print(
        f"\nmedian share: delta_png {statistics.median(shares_delta):.0%}, "
        f"png {statistics.median(shares_png):.0%}"
    )


if __name__ == "__main__":
    main()
