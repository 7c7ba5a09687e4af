"""The segmenter's onnxruntime options: what each costs per inference and what it saves in RSS.

    .venv/bin/python bench/session_options.py --model u2netp --runs 7
    .venv/bin/python bench/session_options.py --model u2net --variants lean,plain --threads 2

Each variant runs in its own long-lived process (so each has its own RSS), the whole engine
(`LocalRemover`: decode, segment, render a PNG) on the 1 MP and 12 MP photos of
bench/engine_speed.py; the variants take turns request by request, the order rotating. Per
variant: the median inference seconds (the model run alone, from the engine's own timings)
with min-max, the median request seconds, the resident memory after a request (VmRSS, what an
idle engine process holds) and the peak (VmHWM). Variants:

- `lean`: memory patterns off, the arena shrunk after every run (the engine until issue 15);
- `plain`: onnxruntime's defaults (memory patterns on, no shrinkage);
- `pattern`: memory patterns on, the arena shrunk after every run;
- `noshrink`: memory patterns off, no shrinkage;
- `bysize`: memory patterns off, the arena shrunk after a run only for images of
  RELEASE_ARENA_PIXELS and more (the engine's default since issue 15).

`--threads` sets the intra-op threads; `--no-spin` turns the pool's spin-waiting off.

`--cpu` measures instead, in one process, the CPU seconds of the model run alone (a 320²
tensor) with each variant's session options, the variants taking turns, and the minor page
faults each run takes (the cost of giving the arena back is faulting it in again).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_speed import MODELS_DIR, make_photos, photo_path  # noqa: E402
from removal.engine.local import RELEASE_ARENA_PIXELS  # noqa: E402

NEVER = 1 << 62
# variant: (memory patterns, release the arena from this many pixels)
VARIANTS = {
    "lean": (False, 0),
    "plain": (True, NEVER),
    "pattern": (True, 0),
    "noshrink": (False, NEVER),
    "bysize": (False, RELEASE_ARENA_PIXELS),
}


def memory_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def worker(model: str, variant: str, threads: int, spin: bool) -> None:
    from removal.engine import registry, segment
    from removal.engine.local import LocalRemover
    from removal.engine.types import RemovalOptions

    spec = registry.get_spec(model)
    memory_pattern, release_pixels = VARIANTS[variant]
    remover = LocalRemover(
        spec.path(MODELS_DIR), spec, threads, False, spin, release_arena_pixels=release_pixels
    )
    remover.segmenter = segment.Segmenter(
        spec.path(MODELS_DIR), spec, threads=threads, spinning=spin, memory_pattern=memory_pattern
    )
    print(json.dumps(memory_mb()), flush=True)
    for line in sys.stdin:
        data = Path(json.loads(line)["path"]).read_bytes()
        options = RemovalOptions(output_format="png")
        t0 = time.perf_counter()
        cutout = remover.analyse(data, options)
        remover.render(cutout, options)
        wall = time.perf_counter() - t0
        print(
            json.dumps({"wall": wall, "inference": cutout.timings["inference"], **memory_mb()}),
            flush=True,
        )


class Worker:
    def __init__(self, model: str, variant: str, threads: int, spin: bool) -> None:
        cmd = [sys.executable, __file__, "--worker", variant, "--model", model]
        cmd += ["--threads", str(threads)] + ([] if spin else ["--no-spin"])
        self.variant = variant
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.loaded = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.variant} worker died")
        return json.loads(line)

    def run(self, path: Path) -> dict:
        self.proc.stdin.write(json.dumps({"path": str(path)}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(60)


def inference_cpu(model: str, threads: int, runs: int) -> None:
    import resource

    import numpy as np

    from removal.engine import registry, segment

    spec = registry.get_spec(model)
    sessions = {
        name: segment.Segmenter(
            spec.path(MODELS_DIR), spec, threads=threads, memory_pattern=pattern
        )
        for name, (pattern, _) in VARIANTS.items()
        if name != "bysize"
    }
    rng = np.random.default_rng(0)
    tensor = sessions["lean"].preprocess(rng.integers(0, 256, (600, 900, 3), dtype=np.uint8))
    cpu: dict[str, list[float]] = {name: [] for name in sessions}
    faults: dict[str, list[int]] = {name: [] for name in sessions}
    names = list(sessions)
    for index in range(runs):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            release = VARIANTS[name][1] == 0
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.process_time()
            sessions[name].run(tensor, release)
            cpu[name].append(time.process_time() - started)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    base = statistics.median(cpu["plain"])
    print(f"model {model}, {threads} thread(s), {runs} runs, load average {os.getloadavg()}\n")
    print("| variant | CPU s per inference | ÷ plain | minor page faults per run |")
    print("| --- | --- | ---: | ---: |")
    for name in names:
        ratio = statistics.median(cpu[name]) / base
        print(
            f"| {name} | {spread(cpu[name])} | {ratio:.2f} | "
            f"{statistics.median(faults[name]):.0f} |"
        )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--variants", default="lean,plain,noshrink,bysize")
    parser.add_argument("--sizes", default="1,4,12")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-spin", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="the model run's CPU time only")
    args = parser.parse_args()
    if args.cpu:
        inference_cpu(args.model, args.threads, args.runs)
        return
    if args.worker:
        worker(args.model, args.worker, args.threads, not args.no_spin)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    make_photos(sizes)
    workers = [
        Worker(args.model, v, args.threads, not args.no_spin) for v in args.variants.split(",")
    ]
    print(
        f"model {args.model}, {args.threads} intra-op thread(s), spinning "
        f"{'off' if args.no_spin else 'on'}, load average {os.getloadavg()} at start"
    )
    print("\n| size | variant | inference s | request s | RSS after MB | peak MB | RSS loaded |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for mp in sizes:
        path = photo_path(mp)
        for w in workers:
            w.run(path)  # warm-up
        runs: dict[str, list[dict]] = {w.variant: [] for w in workers}
        for i in range(args.runs):
            order = workers[i % len(workers) :] + workers[: i % len(workers)]
            for w in order:
                runs[w.variant].append(w.run(path))
        for w in workers:
            got = runs[w.variant]
            print(
                f"| {mp} MP | {w.variant} | {spread([r['inference'] for r in got])} | "
                f"{spread([r['wall'] for r in got])} | "
                f"{statistics.median([r['VmRSS'] for r in got]):.0f} | "
                f"{max(r['VmHWM'] for r in got):.0f} | {w.loaded['VmRSS']:.0f} |",
                flush=True,
            )
    print(f"\nload average {os.getloadavg()} at the end")
    for w in workers:
        w.close()


if __name__ == "__main__":
    main()
