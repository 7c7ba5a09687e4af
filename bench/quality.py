"""Cut-out quality on the dev set: our engine against rembg with the same model.

    .venv/bin/python bench/quality.py --model u2net --model u2netp

For each model it sends every photo of the dev set (``$CUTOUT_SHARED_DIR/eval/dev``, default
``../shared``) through the real engine (`LocalRemover.analyse`, the same code the APIs run)
and writes the alpha it returns as an 8-bit PNG. It does the same with
``rembg.remove(..., only_mask=True)`` on the very same ONNX file, run in the benchmark's own
environment (``bench/.venv-rembg``, made by ``bench/setup_rembg.sh``). Scores come only from
``$CUTOUT_SHARED_DIR/tools/eval_quality.py``, run on the whole set and on each half (sorted
file names, first half / second half), and are printed as a Markdown table.

The photos are research-only: predictions go to ``var/bench/quality/`` (not in git).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from removal.engine import registry  # noqa: E402
from removal.engine.local import LocalRemover  # noqa: E402
from removal.engine.types import RemovalOptions  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
REMBG_PYTHON = ROOT / "bench" / ".venv-rembg" / "bin" / "python"

# Runs inside bench/.venv-rembg: argv = model path, image folder, output folder.
REMBG_SCRIPT = """
import sys
from pathlib import Path
from PIL import Image, ImageOps
from rembg import new_session, remove

model, images, out = sys.argv[1:4]
session = new_session("u2net_custom", model_path=model)
for path in sorted(Path(images).iterdir()):
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    mask = remove(img, session=session, only_mask=True)
    mask.convert("L").save(Path(out) / (path.stem + ".png"))
"""


def shared_dir() -> Path:
    """``$CUTOUT_SHARED_DIR``, else the ``shared`` folder beside the checkout (or beside
    the folder of worktrees it is in)."""
    if "CUTOUT_SHARED_DIR" in os.environ:
        return Path(os.environ["CUTOUT_SHARED_DIR"]).resolve()
    for parent in (ROOT.parent, ROOT.parent.parent):
        if (parent / "shared" / "eval").is_dir():
            return (parent / "shared").resolve()
    return (ROOT.parent / "shared").resolve()


SETS = ("dev", "matting", "horses")


def views_dir(model: str, precision: str, name: str) -> Path:
    """Where bench/views_cache.py keeps a set's maps: float32 (the two earlier pipelines'
    precision) under the model's name, bfloat16 beside it."""
    folder = model if precision == "f32" else f"{model}-{precision}"
    return ROOT / "var" / "bench" / "views" / folder / name


def set_images(folder: Path) -> list[Path]:
    """The photos of one evaluation set (``<set>/images``), sorted by name."""
    return sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def predict_ours(model: str, models_dir: Path, images: list[Path], out: Path) -> float:
    """Alpha PNGs from our engine; returns the mean seconds per photo."""
    custom = None
    if model not in registry.MODELS:  # e.g. u2net-int8 from bench/quantize_u2net.py
        custom = {
            model: registry.custom_spec(model, f"{model}.onnx", input_size=320, divide_by_max=True)
        }
    engine = LocalRemover.from_name(model, models_dir, threads=2, custom=custom)
    options = RemovalOptions(output_format="png")
    start = time.perf_counter()
    for path in images:
        cutout = engine.analyse(path.read_bytes(), options)
        Image.fromarray(np.ascontiguousarray(cutout.alpha), "L").save(out / (path.stem + ".png"))
    return (time.perf_counter() - start) / len(images)


def predict_rembg(model: str, models_dir: Path, images: Path, out: Path) -> float:
    if not REMBG_PYTHON.exists():
        sys.exit(f"{REMBG_PYTHON} is missing: run bench/setup_rembg.sh first")
    env = dict(os.environ, REMBG_HOME=str(models_dir), U2NET_HOME=str(models_dir))
    start = time.perf_counter()
    subprocess.run(
        [
            str(REMBG_PYTHON),
            "-c",
            REMBG_SCRIPT,
            str(models_dir / f"{model}.onnx"),
            str(images),
            str(out),
        ],
        check=True,
        env=env,
    )
    return (time.perf_counter() - start) / len(list(images.iterdir()))


def split_halves(pred: Path, images: list[Path]) -> dict[str, Path]:
    """Copies of the predictions for the first and the second half of the sorted names."""
    stems = [p.stem for p in images]
    half = len(stems) // 2
    folders = {}
    for label, names in (("first half", stems[:half]), ("second half", stems[half:])):
        folder = pred.parent / f"{pred.name}-{label.split()[0]}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for stem in names:
            shutil.copy(pred / f"{stem}.png", folder / f"{stem}.png")
        folders[label] = folder
    return folders


def score(tool: Path, gt: Path, pred: Path) -> dict[str, float]:
    """Runs eval_quality.py and parses its summary line."""
    result = subprocess.run(
        [sys.executable, str(tool), "--gt", str(gt), "--pred", str(pred)],
        check=True,
        capture_output=True,
        text=True,
    )
    line = result.stdout.strip().splitlines()[-1]
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="u2net, u2netp (repeatable)")
    parser.add_argument(
        "--pipeline", action="append", choices=["cutout", "rembg"], help="default: both"
    )
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "quality"))
    args = parser.parse_args()

    shared = shared_dir()
    dev = shared / "eval" / "dev"
    tool = shared / "tools" / "eval_quality.py"
    images = set_images(dev)
    models_dir = Path(args.models_dir).resolve()
    out_root = Path(args.out)
    rows = []
    for model in args.model or ["u2net"]:
        runners = {"cutout": ("Cutout", predict_ours), "rembg": ("rembg", predict_rembg)}
        for who, predict in (runners[p] for p in args.pipeline or ["cutout", "rembg"]):
            pred = out_root / f"{who.lower()}-{model}"
            shutil.rmtree(pred, ignore_errors=True)
            pred.mkdir(parents=True)
            source = images if who == "Cutout" else dev / "images"
            seconds = predict(model, models_dir, source, pred)
            parts = {"all": pred, **split_halves(pred, images)}
            for part, folder in parts.items():
                m = score(tool, dev / "masks", folder)
                rows.append((model, who, part, m, seconds))
                print(f"{model} {who} {part}: {m}", file=sys.stderr)

    print("| model | pipeline | photos | IoU | MAE | boundary IoU | edge MAE | s/photo |")
    print("|---|---|---|---|---|---|---|---|")
    for model, who, part, m, seconds in rows:
        print(
            f"| {model} | {who} | {part} (n={int(m['n'])}) | {m['IoU']:.3f} | {m['MAE']:.3f} "
            f"| {m['boundaryIoU']:.3f} | {m['edgeMAE']:.3f} | {seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
