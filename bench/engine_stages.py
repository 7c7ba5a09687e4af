"""CPU seconds of each step of one local request, in one process, one onnxruntime thread.

    .venv/bin/python bench/engine_stages.py --model u2netp --mp 1 --runs 6

Which steps besides the model are worth trimming: decoding, preprocessing, the model run,
the framing decision, solidifying, upsampling, the alpha, colour estimation of the soft
pixels, the PNG and Delta PNG encoders, then the whole `render()` and `analyse()` (which runs
the model once or twice, as refine.predict decides). CPU time (`time.process_time`) is less
sensitive to a shared machine's load than wall time. The photo is bench/engine_speed.py's
(chelsea, whose first view is in doubt; `--photo coffee`, whose first view is not).
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_speed import MODELS_DIR, SOURCES, make_photos, photo_path  # noqa: E402
from removal.engine import compose, cutouts, encode, refine, registry, segment, solidify  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--mp", type=int, default=1)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--photo", default="chelsea", choices=SOURCES)
    args = parser.parse_args()
    make_photos([args.mp], args.photo)
    spec = registry.get_spec(args.model)
    engine = LocalRemover(spec.path(MODELS_DIR), spec, threads=1)
    data = photo_path(args.mp, args.photo).read_bytes()
    seconds: dict[str, list[float]] = {}

    def timed(name: str, step: Callable[..., Any], *step_args: Any) -> Any:
        started = time.process_time()
        out = step(*step_args)
        seconds.setdefault(name, []).append(time.process_time() - started)
        return out

    release = engine.release_arena_pixels
    for _ in range(args.runs + 1):  # the first is a warm-up
        prepared = timed("decode", cutouts.prepare, data, 25_000_000)
        rgb = prepared.rgb
        tensor = timed("preprocess", engine.segmenter.preprocess, rgb)
        prob = timed("model run", engine.segmenter.run, tensor, rgb.size // 3 >= release)
        timed("framing decision", refine.needs_second_view, prob, rgb.shape)
        solid = timed("solidify", solidify.solidify, prob)
        full = timed("upsample", refine.upsample, solid, rgb)
        alpha = timed("alpha", segment.to_alpha, full)
        colours = timed("colour estimation", compose.estimate_foreground, rgb, alpha)
        timed("PNG encode", encode.png_rgba, colours, alpha)
        timed("Delta PNG encode", encode.delta_png, colours, alpha)
        timed("render() png", engine.render, prepared.cutout(alpha), RemovalOptions())
        timed("analyse()", engine.analyse, data, RemovalOptions())
    soft = float(((alpha > 0) & (alpha < 255)).mean())
    print(f"{args.model}, {rgb.shape[1]}×{rgb.shape[0]}, soft pixels {soft:.1%}\n")
    print("| step | CPU ms, median (min–max) |")
    print("| --- | --- |")
    for name, values in seconds.items():
        values = values[1:]
        ms = [1000 * v for v in values]
        print(f"| {name} | {statistics.median(ms):.1f} ({min(ms):.1f}–{max(ms):.1f}) |")


if __name__ == "__main__":
    main()
