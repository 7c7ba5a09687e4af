"""Cache both framings' maps of every photo of the shared sets, for studying alpha steps.

    .venv/bin/python bench/views_cache.py --model u2netp
    .venv/bin/python bench/views_cache.py --model u2net --precision bf16

For each photo of ``$CUTOUT_SHARED_DIR/eval/{dev,matting,horses}`` it decodes the photo as the
engine does (`cutouts.prepare`), runs the stretched and the letterboxed view
(`refine.stretched_view` / `refine.letterboxed_view`) and stores both maps (float16, at the
model's resolution) in ``var/bench/views/<model>/<set>/<name>.npz`` (``<model>-bf16`` with
``--precision bf16``). `bench/alpha_study.py` scores framing and alpha variants from these maps
without running the model again; `bench/quality_sets.py --cutout-from-cache` builds the cut-outs
from them.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import SETS, set_images, shared_dir, views_dir  # noqa: E402

from removal.engine import cutouts, refine, registry  # noqa: E402
from removal.engine.segment import Segmenter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--set", action="append", choices=SETS)
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    args = parser.parse_args()
    spec = registry.get_spec(args.model)
    segmenter = Segmenter(spec.path(args.models_dir), spec, threads=2, precision=args.precision)
    size = spec.input_size
    for name in args.set or SETS:
        out = views_dir(args.model, args.precision, name)
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        images = set_images(shared_dir() / "eval" / name)
        for path in images:
            target = out / f"{path.stem}.npz"
            if target.exists():
                continue
            prepared = cutouts.prepare(path.read_bytes(), 25_000_000)
            rgb, alpha = prepared.rgb, prepared.input_alpha
            stretched = refine.stretched_view(segmenter.predict, rgb, alpha)
            boxed = refine.letterboxed_view(segmenter.predict, rgb, alpha, size, stretched.shape)
            np.savez(target, stretched=stretched.astype(np.float16), boxed=boxed.astype(np.float16))
        print(f"{name}: {len(images)} photos, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
