"""Engine speed and memory against rembg, same model files, same machine, same run.

    bash bench/setup_rembg.sh                      # once: bench/.venv-rembg with rembg
    .venv/bin/python bench/engine_speed.py         # u2netp and u2net at 1, 4 and 12 MP
    .venv/bin/python bench/engine_speed.py --models u2netp --sizes 1 --runs 3   # quick look

Photos: scikit-image's `chelsea` (a real 451 x 300 photo) scaled with Lanczos to 1, 4, 12 and
32 MP at 3:2, with mild Gaussian grain (sigma 2) so the pixels are not unnaturally smooth, and
saved as quality-90 JPEG in bench/out/photos/. Each implementation runs in its own long-lived
worker process (ours in .venv, rembg in bench/.venv-rembg with REMBG_HOME/U2NET_HOME set to
Cutout's models folder, so both load the very same .onnx files) with 2 inference threads.
Workers take turns request by request, so both see the same machine load; one warm-up request
per photo is not counted. Reported: medians of --runs requests (wall and CPU seconds), our
time split by stage, the ratio to rembg within the run, peak RSS per worker process (sizes run
in ascending order, so the peak after a size is that size's peak), encode-only times and
bytes (ours vs Pillow's level-6 PNG that rembg writes), and a 32 MP input in a fresh process.
Results: bench/out/engine_speed.json and a Markdown report on stdout.
"""

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PHOTOS = OUT / "photos"
REMBG_PYTHON = Path(
    os.environ.get("REMBG_PYTHON", ROOT / "bench" / ".venv-rembg" / "bin" / "python")
)
MODELS_DIR = Path(os.environ.get("CUTOUT_DATA_DIR", ROOT / "var")) / "models"
SIZES_MP = {1: (1224, 816), 4: (2448, 1632), 12: (4242, 2828), 32: (6924, 4616)}


# --- photos -------------------------------------------------------------------------------


# scikit-image photos to scale up. With the default model the stretched view of chelsea (a
# close-up: the cat's head fills the top of the frame) is in doubt, so the engine runs the
# model twice on it; coffee's (a cup on a table) is not: one inference (refine.py).
SOURCES = ("chelsea", "coffee")


def photo_path(mp: int, source: str = "chelsea") -> Path:
    return PHOTOS / f"{source}_{mp}mp.jpg"


def make_photos(sizes: list[int], source: str = "chelsea") -> None:
    import cv2
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    PHOTOS.mkdir(parents=True, exist_ok=True)
    image = getattr(skdata, source)()
    rng = np.random.default_rng(7)
    for mp in sizes:
        path = photo_path(mp, source)
        if path.exists():
            continue
        width, height = SIZES_MP[mp]
        big = cv2.resize(image, (width, height), interpolation=cv2.INTER_LANCZOS4)
        grain = rng.normal(0.0, 2.0, big.shape).astype(np.float32)
        big = np.clip(big.astype(np.float32) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(big).save(path, "JPEG", quality=90)


# --- workers (run inside the measured process) ---------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CutoutWorker:
    def __init__(self, model: str, threads: int):
        sys.path.insert(0, str(ROOT))
        from removal.engine import encode
        from removal.engine.local import LocalRemover
        from removal.engine.types import RemovalOptions

        self.encode = encode
        self.options = RemovalOptions
        self.remover = LocalRemover.from_name(model, MODELS_DIR, threads=threads)

    def run(self, data: bytes, fmt: str) -> dict:
        options = self.options(output_format=fmt)
        t0, c0 = time.perf_counter(), time.process_time()
        cutout = self.remover.analyse(data, options)
        t1 = time.perf_counter()
        result = self.remover.render(cutout, options)
        t2, c2 = time.perf_counter(), time.process_time()
        stages = {k: round(v, 4) for k, v in cutout.timings.items()}
        stages["render"] = round(t2 - t1, 4)
        # Encode alone (outside the timed request): the bytes-out step rembg also has.
        e0, ec0 = time.perf_counter(), time.process_time()
        if fmt == "delta_png":
            self.encode.delta_png(cutout.rgb, cutout.alpha)
        else:
            self.encode.png_rgba(cutout.rgb, cutout.alpha)
        encode_s, encode_cpu = time.perf_counter() - e0, time.process_time() - ec0
        return {
            "wall": t2 - t0,
            "cpu": c2 - c0,
            "stages": stages,
            "bytes": len(result.body),
            "encode_wall": encode_s,
            "encode_cpu": encode_cpu,
            "peak_rss_mb": peak_rss_mb(),
        }

    def sizes(self, paths: list[str]) -> list[dict]:
        out = []
        for path in paths:
            cutout = self.remover.analyse(Path(path).read_bytes(), self.options())
            delta = self.remover.render(cutout, self.options(output_format="delta_png"))
            png = self.remover.render(cutout, self.options(output_format="png"))
            out.append({"delta_png": len(delta.body), "png": len(png.body)})
        return out


class RembgWorker:
    def __init__(self, model: str, threads: int):
        from rembg import new_session, remove

        self.remove = remove
        self.session = new_session(model)

    def run(self, data: bytes, fmt: str) -> dict:
        from PIL import Image

        t0, c0 = time.perf_counter(), time.process_time()
        body = self.remove(data, session=self.session)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        # rembg's own last step, timed alone: Pillow's default (level 6) PNG of its RGBA.
        image = Image.open(io.BytesIO(body))
        image.load()
        e0, ec0 = time.perf_counter(), time.process_time()
        image.save(io.BytesIO(), "PNG")
        encode_s, encode_cpu = time.perf_counter() - e0, time.process_time() - ec0
        return {
            "wall": wall,
            "cpu": cpu,
            "bytes": len(body),
            "encode_wall": encode_s,
            "encode_cpu": encode_cpu,
            "peak_rss_mb": peak_rss_mb(),
        }

    def sizes(self, paths: list[str]) -> list[dict]:
        return [
            {"png": len(self.remove(Path(p).read_bytes(), session=self.session))} for p in paths
        ]


def worker_main(kind: str, model: str, threads: int) -> None:
    worker = (CutoutWorker if kind == "cutout" else RembgWorker)(model, threads)
    print(json.dumps({"ready": True, "peak_rss_mb": peak_rss_mb()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("cmd") == "bytes":
            print(json.dumps(worker.sizes(request["paths"])), flush=True)
            continue
        data = Path(request["path"]).read_bytes()
        print(json.dumps(worker.run(data, request["format"])), flush=True)


# --- driver --------------------------------------------------------------------------------


class Worker:
    def __init__(self, kind: str, model: str, threads: int):
        python = sys.executable if kind == "cutout" else str(REMBG_PYTHON)
        env = {**os.environ, "REMBG_HOME": str(MODELS_DIR), "U2NET_HOME": str(MODELS_DIR)}
        env.pop("OMP_NUM_THREADS", None)
        cmd = [python, __file__, "--worker", kind, "--model", model, "--threads", str(threads)]
        self.kind = kind
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.kind} worker died (exit {self.proc.wait()})")
        return json.loads(line)

    def run(self, path: Path, fmt: str) -> dict:
        self.proc.stdin.write(json.dumps({"path": str(path), "format": fmt}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def sizes(self, paths: list[Path]) -> list[dict]:
        self.proc.stdin.write(json.dumps({"cmd": "bytes", "paths": [str(p) for p in paths]}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[dict]) -> dict:
    out = {
        "wall": median([r["wall"] for r in runs]),
        "cpu": median([r["cpu"] for r in runs]),
        "bytes": runs[-1]["bytes"],
        "encode_wall": median([r["encode_wall"] for r in runs]),
        "encode_cpu": median([r["encode_cpu"] for r in runs]),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "walls": [round(r["wall"], 3) for r in runs],
    }
    if "stages" in runs[0]:
        out["stages"] = {k: median([r["stages"][k] for r in runs]) for k in runs[0]["stages"]}
    return out


def bench_model(model: str, sizes: list[int], runs: int, threads: int) -> dict:
    ours = Worker("cutout", model, threads)
    peer = Worker("rembg", model, threads)
    results: dict = {"load_rss_mb": {"cutout": ours.ready["peak_rss_mb"]}}
    results["load_rss_mb"]["rembg"] = peer.ready["peak_rss_mb"]
    jobs = [(ours, "delta_png"), (ours, "png"), (peer, "png")]
    for mp in sizes:
        path = photo_path(mp)
        collected: dict[str, list[dict]] = {f"{w.kind}:{fmt}": [] for w, fmt in jobs}
        for worker, fmt in jobs:  # warm-up, not counted
            worker.run(path, fmt)
        for i in range(runs):
            order = jobs[i % len(jobs) :] + jobs[: i % len(jobs)]  # rotate who goes first
            for worker, fmt in order:
                collected[f"{worker.kind}:{fmt}"].append(worker.run(path, fmt))
            print(f"  {model} {mp} MP run {i + 1}/{runs}", file=sys.stderr, flush=True)
        results[mp] = {key: summarise(value) for key, value in collected.items()}
    dev = dev_images()
    if dev:
        ours_sizes, peer_sizes = ours.sizes(dev), peer.sizes(dev)
        delta = [o["delta_png"] / p["png"] for o, p in zip(ours_sizes, peer_sizes, strict=True)]
        png = [o["png"] / p["png"] for o, p in zip(ours_sizes, peer_sizes, strict=True)]
        results["dev_bytes"] = {
            "images": len(dev),
            "delta_over_rembg_median": median(delta),
            "delta_over_rembg_mean": statistics.fmean(delta),
            "png_over_rembg_median": median(png),
            "delta_total_mb": sum(o["delta_png"] for o in ours_sizes) / 1e6,
            "png_total_mb": sum(o["png"] for o in ours_sizes) / 1e6,
            "rembg_total_mb": sum(p["png"] for p in peer_sizes) / 1e6,
        }
    ours.close()
    peer.close()
    return results


def dev_images() -> list[Path]:
    shared = Path(os.environ.get("CUTOUT_SHARED_DIR", ROOT.parent / "shared"))
    folder = shared / "eval" / "dev" / "images"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".png"))


def bench_32mp(model: str, threads: int) -> dict:
    """A 32 MP input in a fresh process: peak RSS (delta_png at full size, png at 25 MP)."""
    out = {}
    for fmt in ("delta_png", "png"):
        worker = Worker("cutout", model, threads)
        result = worker.run(photo_path(32), fmt)
        worker.close()
        out[fmt] = {
            "wall": result["wall"],
            "peak_rss_mb": result["peak_rss_mb"],
            "bytes": result["bytes"],
        }
    return out


# --- PNG settings sweep (in this process) --------------------------------------------------


def png_sweep(mp: int = 4, repeats: int = 5) -> str:
    """Size and CPU of our PNG writer by filter, zlib strategy and level, on one cut-out."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from removal.engine import encode
    from removal.engine.local import LocalRemover
    from removal.engine.types import RemovalOptions

    remover = LocalRemover.from_name("u2netp", MODELS_DIR)
    cutout = remover.analyse(photo_path(mp).read_bytes(), RemovalOptions())
    images = {
        "Delta PNG": encode.delta_rgba(cutout.rgb, cutout.alpha),
        "RGBA cut-out": encode.rgba_cutout(cutout.rgb, cutout.alpha),
    }
    up = encode._up_rows

    def paeth_rows(bpp):
        """PNG's Paeth filter with OpenCV uint8 operations (the alternative we measured)."""
        import cv2

        def rows_of(flat, start, stop):
            rows, width = stop - start, flat.shape[1]
            padded = np.zeros((rows + 1, width + bpp), dtype=np.uint8)
            if start > 0:
                padded[0, bpp:] = flat[start - 1]
            padded[1:, bpp:] = flat[start:stop]
            here, left = padded[1:, bpp:], padded[1:, :width]
            above, above_left = padded[:-1, bpp:], padded[:-1, :width]
            pa = cv2.absdiff(above, above_left)
            pb = cv2.absdiff(left, above_left)
            pc = cv2.add(pa, pb)
            opposite = cv2.bitwise_xor(
                cv2.compare(left, above_left, cv2.CMP_GE),
                cv2.compare(above, above_left, cv2.CMP_GE),
            )
            cv2.copyTo(cv2.absdiff(pa, pb), opposite, pc)
            predictor = above_left.copy()
            cv2.copyTo(above, cv2.compare(pb, pc, cv2.CMP_LE), predictor)
            use_left = cv2.bitwise_and(
                cv2.compare(pa, pb, cv2.CMP_LE), cv2.compare(pa, pc, cv2.CMP_LE)
            )
            cv2.copyTo(left, use_left, predictor)
            out = np.empty((rows, width + 1), dtype=np.uint8)
            out[:, 0] = 4
            np.subtract(here, predictor, out=out[:, 1:])
            return out

        return rows_of

    def cpu(fn):
        times = []
        for _ in range(repeats):
            c0 = time.process_time()
            body = fn()
            times.append(time.process_time() - c0)
        return statistics.median(times), len(body)

    lines = [
        f"| image ({mp} MP) | filter | strategy | level | bytes | CPU s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    strategy = encode.PNG_STRATEGY
    try:
        for name, pixels in images.items():
            for filter_name, rows in (("Up", up), ("Paeth", paeth_rows(pixels.shape[2]))):
                encode._up_rows = rows
                for strategy_name, value in (("RLE", encode._deflate.Z_RLE), ("default", 0)):
                    encode.PNG_STRATEGY = value
                    for level in (1, 2, 3, 4, 6, 9):
                        t, size = cpu(lambda p=pixels, lv=level: encode.png(p, lv))
                        lines.append(
                            f"| {name} | {filter_name} | {strategy_name} | {level} "
                            f"| {size / 1e6:.2f} MB | {t:.3f} |"
                        )

            def pillow(p=pixels):
                buf = io.BytesIO()
                Image.fromarray(p).save(buf, "PNG")
                return buf.getvalue()

            t, size = cpu(pillow)
            lines.append(
                f"| {name} | Pillow adaptive | default | 6 | {size / 1e6:.2f} MB | {t:.3f} |"
            )
    finally:
        encode._up_rows = up
        encode.PNG_STRATEGY = strategy
    return "\n".join(lines)


# --- report --------------------------------------------------------------------------------


def report(results: dict, runs: int) -> str:
    lines = []
    for model, by_size in results["models"].items():
        lines.append(
            f"\n### {model}: latency, one request at a time (median of {runs} warm runs)\n"
        )
        lines.append(
            "| input | Cutout delta_png | Cutout png | rembg png | delta / rembg "
            "| png / rembg | CPU s: delta / png / rembg |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for mp in results["sizes"]:
            r = by_size[mp]
            d, p, x = r["cutout:delta_png"], r["cutout:png"], r["rembg:png"]
            lines.append(
                f"| {mp} MP | {d['wall']:.3f} s | {p['wall']:.3f} s | {x['wall']:.3f} s "
                f"| {d['wall'] / x['wall']:.2f} | {p['wall'] / x['wall']:.2f} "
                f"| {d['cpu']:.2f} / {p['cpu']:.2f} / {x['cpu']:.2f} |"
            )
        lines.append(f"\n{model}, Cutout's stages (median seconds, wall):\n")
        stage_names = list(by_size[results["sizes"][0]]["cutout:delta_png"]["stages"])
        lines.append("| input | format | " + " | ".join(stage_names) + " |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in stage_names) + " |")
        for mp in results["sizes"]:
            for fmt in ("delta_png", "png"):
                stages = by_size[mp][f"cutout:{fmt}"]["stages"]
                cells = " | ".join(f"{stages[k]:.3f}" for k in stage_names)
                lines.append(f"| {mp} MP | {fmt} | {cells} |")
        lines.append(f"\n{model}, encoding alone and output bytes (median, wall / CPU):\n")
        lines.append(
            "| input | Delta PNG | Cutout PNG | rembg PNG (Pillow level 6) "
            "| Delta bytes / rembg | Delta time / rembg |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for mp in results["sizes"]:
            r = by_size[mp]
            d, p, x = r["cutout:delta_png"], r["cutout:png"], r["rembg:png"]
            lines.append(
                f"| {mp} MP | {d['encode_wall']:.3f} / {d['encode_cpu']:.3f} s, "
                f"{d['bytes'] / 1e6:.2f} MB | {p['encode_wall']:.3f} / {p['encode_cpu']:.3f} s, "
                f"{p['bytes'] / 1e6:.2f} MB | {x['encode_wall']:.3f} / {x['encode_cpu']:.3f} s, "
                f"{x['bytes'] / 1e6:.2f} MB | {d['bytes'] / x['bytes']:.2f} "
                f"| {d['encode_wall'] / x['encode_wall']:.2f} |"
            )
        lines.append(f"\n{model}, peak RSS per process (MB, cumulative up to that size):\n")
        lines.append("| input | Cutout | rembg |")
        lines.append("| --- | --- | --- |")
        lines.append(
            f"| after load | {by_size['load_rss_mb']['cutout']:.0f} "
            f"| {by_size['load_rss_mb']['rembg']:.0f} |"
        )
        for mp in results["sizes"]:
            r = by_size[mp]
            ours = max(r["cutout:delta_png"]["peak_rss_mb"], r["cutout:png"]["peak_rss_mb"])
            lines.append(f"| {mp} MP | {ours:.0f} | {r['rembg:png']['peak_rss_mb']:.0f} |")
        if "dev_bytes" in by_size:
            dev = by_size["dev_bytes"]
            lines.append(
                f"\n{model}, output bytes on the {dev['images']} dev-set photos (0.15 MP each; "
                f"rembg's PNG = 1): Delta PNG median {dev['delta_over_rembg_median']:.2f} "
                f"(mean {dev['delta_over_rembg_mean']:.2f}), Cutout PNG median "
                f"{dev['png_over_rembg_median']:.2f}; totals {dev['delta_total_mb']:.1f} / "
                f"{dev['png_total_mb']:.1f} / {dev['rembg_total_mb']:.1f} MB.\n"
            )
        if model in results.get("32mp", {}):
            big = results["32mp"][model]
            lines.append(
                f"\n{model}, 32 MP input in a fresh process: delta_png (full size) "
                f"{big['delta_png']['wall']:.2f} s, peak RSS {big['delta_png']['peak_rss_mb']:.0f} "
                f"MB; png (processed at 25 MP) {big['png']['wall']:.2f} s, peak RSS "
                f"{big['png']['peak_rss_mb']:.0f} MB.\n"
            )
    return "\n".join(lines)


def machine_conditions() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"(1/5/15 min) at the end of the run"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=["cutout", "rembg"], help=argparse.SUPPRESS)
    parser.add_argument("--models", default="u2netp,u2net")
    parser.add_argument("--sizes", default="1,4,12", help="MP, of " + ",".join(map(str, SIZES_MP)))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="u2netp", help=argparse.SUPPRESS)
    parser.add_argument("--skip-32mp", action="store_true")
    parser.add_argument("--png-sweep", action="store_true", help="only the PNG settings sweep")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.model, args.threads)
        return
    if not REMBG_PYTHON.exists():
        sys.exit("bench/.venv-rembg is missing: run bash bench/setup_rembg.sh first")
    if args.png_sweep:
        make_photos([4])
        print(png_sweep())
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    make_photos(sorted(set(sizes) | ({32} if not args.skip_32mp else set())))
    models = args.models.split(",")
    results: dict = {"sizes": sizes, "models": {}, "32mp": {}, "started": time.time()}
    for model in models:
        print(f"{model}: {args.runs} runs per size", file=sys.stderr, flush=True)
        results["models"][model] = bench_model(model, sizes, args.runs, args.threads)
        if not args.skip_32mp:
            results["32mp"][model] = bench_32mp(model, args.threads)
    results["conditions"] = machine_conditions()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "engine_speed.json").write_text(json.dumps(results, indent=1, default=str))
    print(report(results, args.runs))
    print(f"\nConditions: {results['conditions']}.")


if __name__ == "__main__":
    main()
