"""One request at a time through the API against rembg's `remove()`, same model, same run.

    bash bench/setup_rembg.sh                         # once: bench/.venv-rembg with rembg
    .venv/bin/python bench/api_speed.py --model u2netp --layouts narrow,wide --runs 7
    .venv/bin/python bench/api_speed.py --model u2net --layouts wide --photo coffee

Cutout runs as in production behind gunicorn (`gunicorn.conf.py`, real API calls charged to an
account, as bench/load.py starts it), once per serving layout of bench/load.py's LAYOUTS;
rembg's `remove()` runs in its own long-lived process (bench/engine_speed.py's worker, 2
onnxruntime threads, Pillow's level-6 PNG out) with the very same .onnx file. Photos: the 1, 4
and 12 MP JPEGs of bench/engine_speed.py (chelsea, two inferences; `--photo coffee`: one). For
each photo every server gets one warm-up, then `--runs` rounds in which each takes one request,
the order rotating round by round; the time of a Cutout call is the client's (upload, answer,
download of the PNG). Reported per size and server: the median seconds with min-max, and the
median of the per-round ratios to rembg (each round's Cutout time over the same round's rembg
time), with the load average.
Results: var/bench/api_speed-<model>-<photo>.json and a Markdown table on stdout.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import engine_speed, load  # noqa: E402


def timed_post(server: load.Server, body: bytes) -> float:
    request = urllib.request.Request(server.url, data=body, headers=server.headers())
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{server.name} answered {response.status}")
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--layouts", default="conf", help=f"of {','.join(load.LAYOUTS)}")
    parser.add_argument("--sizes", default="1,4,12")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--photo", default="chelsea", choices=engine_speed.SOURCES)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    engine_speed.make_photos(sizes, args.photo)
    work = Path(tempfile.mkdtemp(prefix="cutout-api-speed-"))
    server_args = SimpleNamespace(model=args.model, workers=0, threads=0)
    servers: list[load.Server] = []
    rembg = None
    results: dict = {"model": args.model, "sizes": {}, "layouts": {}}
    try:
        for layout in args.layouts.split(","):
            servers.append(load.start_cutout(work, b"", server_args, layout))
            results["layouts"][servers[-1].name] = load.layout_env(layout)
        rembg = engine_speed.Worker("rembg", args.model, 2)
        for mp in sizes:
            path = engine_speed.photo_path(mp, args.photo)
            bodies = {}
            for server in servers:
                bodies[server.name], server.content_type = load.multipart(
                    {}, "image", path.read_bytes()
                )
                timed_post(server, bodies[server.name])  # warm-up
            rembg.run(path, "png")
            players = [server.name for server in servers] + ["rembg"]
            times: dict[str, list[float]] = {name: [] for name in players}
            loads = []
            for index in range(args.runs):
                shift = index % len(players)
                for name in players[shift:] + players[:shift]:
                    if name == "rembg":
                        times[name].append(rembg.run(path, "png")["wall"])
                    else:
                        server = next(s for s in servers if s.name == name)
                        times[name].append(timed_post(server, bodies[name]))
                loads.append(os.getloadavg()[0])
                load.log(f"{args.model} {mp} MP round {index + 1}: {times}")
            results["sizes"][mp] = {"seconds": times, "loadavg": loads}
    finally:
        for server in servers:
            server.stop()
        if rembg is not None:
            rembg.close()
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "var" / "bench" / f"api_speed-{args.model}-{args.photo}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"{args.model}, {args.runs} rounds, layouts {results['layouts']}\n")
    print("| input | server | seconds, median (min–max) | ÷ rembg, median of rounds (min–max) |")
    print("| --- | --- | --- | --- |")
    for mp, got in results["sizes"].items():
        peer = got["seconds"]["rembg"]
        for name, values in got["seconds"].items():
            ratio = "–"
            if name != "rembg":
                ratio = spread([ours / theirs for ours, theirs in zip(values, peer, strict=True)])
            print(f"| {mp} MP | {name} | {spread(values)} | {ratio} |")
        lo, hi = min(got["loadavg"]), max(got["loadavg"])
        print(f"| {mp} MP | load average (1 min) | {lo:.1f}–{hi:.1f} | |")


if __name__ == "__main__":
    main()
