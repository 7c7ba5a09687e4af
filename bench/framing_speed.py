"""What the framings cost: `refine.predict` (the stretched view, plus the letterboxed one when
the stretched view is in doubt) against the stretched view alone, and the whole
`LocalRemover.analyse`, at 1, 4 and 12 MP.

    .venv/bin/python bench/framing_speed.py --model u2net --runs 5

The photo is skimage's rocket (3:2, so it may take both views) upscaled to each size. Medians of
--runs warm runs, wall clock, the engine's 2 inference threads, one thread of requests. The
machine is shared: read the added time against the one-view time of the same run.
"""

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import cv2
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from removal.engine import refine, registry  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    args = parser.parse_args()

    custom = None
    if args.model not in registry.MODELS:  # e.g. u2net-int8 from bench/quantize_u2net.py
        spec = registry.custom_spec(
            args.model, f"{args.model}.onnx", input_size=320, divide_by_max=True
        )
        custom = {args.model: spec}
    engine = LocalRemover.from_name(args.model, args.models_dir, threads=2, custom=custom)
    segmenter, size = engine.segmenter, engine.spec.input_size
    source = data.rocket()
    print("| model | MP | one view (stretched) | two views (refine.predict) | added | analyse() |")
    print("|---|---|---|---|---|---|")
    for megapixels in (1, 4, 12):
        scale = (megapixels * 1e6 / (source.shape[0] * source.shape[1])) ** 0.5
        rgb = cv2.resize(
            source,
            (round(source.shape[1] * scale), round(source.shape[0] * scale)),
            interpolation=cv2.INTER_CUBIC,
        )
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90)
        jpeg = buf.getvalue()
        options = RemovalOptions(output_format="delta_png")
        refine.predict(segmenter.predict, rgb, None, size)  # warm both shapes
        one = median_time(lambda: segmenter.predict(rgb), args.runs)  # noqa: B023
        two = median_time(lambda: refine.predict(segmenter.predict, rgb, None, size), args.runs)  # noqa: B023
        whole = median_time(lambda: engine.analyse(jpeg, options), args.runs)  # noqa: B023
        print(
            f"| {args.model} | {megapixels} | {one * 1000:.0f} ms | {two * 1000:.0f} ms "
            f"| +{(two - one) * 1000:.0f} ms ({two / one:.2f}x) | {whole * 1000:.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
