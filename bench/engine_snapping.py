"""How wide should alpha snapping be? Quality and Delta PNG size per snapping margin.

    .venv/bin/python bench/engine_snapping.py --model u2netp
    .venv/bin/python bench/engine_snapping.py --model u2net

For each dev-set photo (found through CUTOUT_SHARED_DIR, default ../shared) the engine's raw
alpha (`options.raw`: no snapping) is computed once; then for each margin (LOW/HIGH on the
0-255 scale: alpha <= LOW -> 0, alpha >= HIGH -> 255) it reports IoU@128 and MAE against the
hard ground-truth masks (the definitions of ../shared/tools/eval_quality.py), the share of
partially transparent pixels, and the Delta PNG's size relative to Pillow's default (level 6)
PNG of the unsnapped RGBA cut-out, which is what rembg writes.
"""

import argparse
import io
import os
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from removal.engine import decode, encode  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402

MARGINS = [(0, 255), (5, 250), (10, 245), (16, 239), (24, 231), (32, 223), (48, 207), (64, 191)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="u2net")
    args = parser.parse_args()
    shared = Path(os.environ.get("CUTOUT_SHARED_DIR", ROOT.parent / "shared"))
    dev = shared / "eval" / "dev"
    models = Path(os.environ.get("CUTOUT_DATA_DIR", ROOT / "var")) / "models"
    remover = LocalRemover.from_name(args.model, models)
    raw = RemovalOptions(raw=True)
    photos = []
    for path in sorted((dev / "images").glob("*")):
        rgb = decode.decode(path.read_bytes()).rgb
        gt = np.asarray(Image.open(dev / "masks" / f"{path.stem}.png").convert("L")) / 255.0
        alpha = remover.segment(rgb, None, raw)
        buf = io.BytesIO()
        Image.fromarray(encode.rgba_cutout(rgb, alpha)).save(buf, "PNG")
        photos.append((rgb, gt.astype(np.float32), alpha, len(buf.getvalue())))
    print(f"| {args.model}: snap LOW/HIGH | IoU | MAE | soft pixels | Delta PNG / level-6 PNG |")
    print("| --- | --- | --- | --- | --- |")
    for low, high in MARGINS:
        lut = np.arange(256, dtype=np.uint8)
        lut[: low + 1] = 0
        lut[high:] = 255
        ious, maes, soft, ratios = [], [], [], []
        for rgb, gt, alpha, png_bytes in photos:
            snapped = cv2.LUT(alpha, lut)
            pred = snapped.astype(np.float32) / 255.0
            union = ((pred >= 0.5) | (gt >= 0.5)).sum()
            ious.append(((pred >= 0.5) & (gt >= 0.5)).sum() / union if union else 1.0)
            maes.append(float(np.abs(pred - gt).mean()))
            soft.append(float(((snapped > 0) & (snapped < 255)).mean()))
            ratios.append(len(encode.delta_png(rgb, snapped)) / png_bytes)
        print(
            f"| {low}/{high} | {statistics.fmean(ious):.4f} | {statistics.fmean(maes):.4f} "
            f"| {100 * statistics.fmean(soft):.1f} % | {statistics.median(ratios):.2f} |"
        )


if __name__ == "__main__":
    main()
