"""Load and soak: Cutout under gunicorn against rembg's own server (`rembg s`), same model.

    python bench/load.py                      # the full run of docs/BENCHMARKS.md
    python bench/load.py --runs 1 --soak 200  # a quick look

Both servers run on 127.0.0.1 with u2netp and get the same 1 MP JPEG (an evaluation photo from
CUTOUT_SHARED_DIR, scaled up; skimage's astronaut when the folder is absent). The load comes
from `hey` (Debian/Ubuntu: `apt-get install hey`), at 1, 2, 4 and 8 concurrent clients; the two
servers take turns level by level so that both see the same background load, and each figure is
the median of `--runs` runs. Cutout answers real production calls (an account with credits,
the ledger written on every call; rate and concurrency limits off, since one account sends
everything). rembg needs `bench/setup_rembg.sh` and runs offline only as `u2net_custom` with
the model path in `extras` and REMBG_HOME set.

The soak sends `--soak` requests to Cutout in ten equal chunks at `--soak-clients` clients and
reads every gunicorn worker's resident memory (VmRSS) after each chunk: growth is measured from
the end of the first chunk (warm-up) to the end of the last.

Results: a JSON file (`--out`) and Markdown tables on stdout, for docs/BENCHMARKS.md.
"""

import argparse
import csv
import io
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "var" / "models"
REMBG = REPO / "bench" / ".venv-rembg" / "bin" / "rembg"
PHOTO = "sod_101087.jpg"
ONE_MP = (1224, 816)
# Serving layouts to compare (--layouts): engine processes x onnxruntime threads each, as
# multiples of the machine's cores. "conf" is gunicorn.conf.py's own default, untouched.
LAYOUTS: dict[str, tuple[int, int] | None] = {
    "conf": None,
    "narrow": (1, 1),  # cores processes x 1 thread: a lone request gets one core
    "wide": (1, 0),  # cores processes x cores threads (0 = all cores): a lone request gets all
    "single": (0, 0),  # one process x cores threads
}


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def one_megapixel_jpeg() -> bytes:
    from PIL import Image

    shared = Path(os.environ.get("CUTOUT_SHARED_DIR", REPO.parent / "shared"))
    source = shared / "eval" / "dev" / "images" / PHOTO
    if source.is_file():
        image = Image.open(source).convert("RGB")
    else:
        from skimage import data

        image = Image.fromarray(data.astronaut())
    image = image.resize(ONE_MP if image.width >= image.height else ONE_MP[::-1], Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def multipart(fields: dict[str, str], file_field: str, data: bytes) -> tuple[bytes, str]:
    boundary = "cutoutbench" + secrets.token_hex(8)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        )
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    body = "".join(parts).encode() + head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} did not come up within {seconds:.0f} s")


def http_status(url: str, body: bytes | None = None, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- processes and their memory -----------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [grandchild for child in found for grandchild in descendants(child)]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = round(int(rest.split()[0]) / 1024, 1)
    return values


class Server:
    def __init__(self, name: str, url: str, body: bytes, content_type: str, auth: str = ""):
        self.name, self.url, self.body, self.content_type, self.auth = (
            name,
            url,
            body,
            content_type,
            auth,
        )
        self.process: subprocess.Popen | None = None

    def headers(self) -> dict:
        headers = {"Content-Type": self.content_type}
        if self.auth:
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        return headers

    def post_once(self) -> int:
        return http_status(self.url, self.body, self.headers())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def layout_env(layout: str) -> dict[str, str]:
    """The environment of a serving layout (LAYOUTS), for this machine's cores."""
    if LAYOUTS[layout] is None:
        return {}
    cores = len(os.sched_getaffinity(0))
    processes, threads = LAYOUTS[layout]
    return {
        "CUTOUT_ENGINE_PROCESSES": str(cores if processes else 1),
        "CUTOUT_INFERENCE_THREADS": str(threads or cores),
    }


def start_cutout(work: Path, photo: bytes, args, layout: str = "conf") -> Server:
    label = "Cutout" if layout == "conf" else f"Cutout {layout}"
    data_dir = work / label.replace(" ", "-")
    data_dir.mkdir()
    (data_dir / "models").symlink_to(MODELS)
    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "CUTOUT_DATA_DIR": str(data_dir),
        "CUTOUT_MODEL": args.model,
        "CUTOUT_RATE_LIMIT_PER_MINUTE": "0",
        "CUTOUT_CONCURRENCY_LIMIT": "0",
        "CUTOUT_LOG_LEVEL": "WARNING",
        **layout_env(layout),
    }
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG"):
        env.pop(name, None)
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads:
        env["CUTOUT_INFERENCE_THREADS"] = str(args.threads)
    python = str(REPO / ".venv" / "bin" / "python")

    def manage(*command: str) -> str:
        return subprocess.run(
            [python, "manage.py", *command],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    manage("migrate", "--noinput", "-v0")
    key_id, secret = manage("create_api_key", "bench@example.com", "--create-user").split()
    manage("grant_credits", "bench@example.com", "1000000")
    port = free_port()
    logfile = open(data_dir / "gunicorn.log", "w")
    process = subprocess.Popen(
        [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    body, content_type = multipart({}, "image", photo)
    server = Server(
        label,
        f"http://127.0.0.1:{port}/api/v2/remove-background",
        body,
        content_type,
        f"{key_id}:{secret}",
    )
    server.process = process
    wait_until(
        lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 300, "Cutout's gunicorn"
    )
    return server


def start_rembg(work: Path, photo: bytes, args) -> Server:
    if not REMBG.exists():
        raise SystemExit("rembg is not installed: run bench/setup_rembg.sh first")
    if subprocess.run([str(REMBG), "s", "--help"], capture_output=True).returncode != 0:
        raise SystemExit(
            "rembg's server needs its cli extra: "
            "bench/.venv-rembg/bin/pip install 'rembg[cpu,cli]' (bench/setup_rembg.sh does)"
        )
    port = free_port()
    env = {**os.environ, "REMBG_HOME": str(MODELS), "U2NET_HOME": str(MODELS)}
    logfile = open(work / "rembg.log", "w")
    process = subprocess.Popen(
        [str(REMBG), "s", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        cwd=work,
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    extras = json.dumps({"model_path": str(MODELS / f"{args.model}.onnx")})
    url = f"http://127.0.0.1:{port}/api/remove?" + urllib.parse.urlencode({"extras": extras})
    body, content_type = multipart({"model": "u2net_custom"}, "file", photo)
    server = Server("rembg", url, body, content_type)
    server.process = process

    def answers() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_until(answers, 300, "rembg's server")
    return server


# --- measuring ------------------------------------------------------------------------------------


def run_hey(server: Server, requests: int, clients: int, work: Path) -> dict:
    body_path = work / f"{server.name}-body.bin"
    body_path.write_bytes(server.body)
    command = ["hey", "-n", str(requests), "-c", str(clients), "-m", "POST", "-t", "300"]
    command += ["-T", server.content_type, "-D", str(body_path), "-o", "csv"]
    if server.auth:
        # hey's own -a is not sent by every hey build: the header is spelt out instead.
        command += ["-H", "Authorization: " + server.headers()["Authorization"]]
    command.append(server.url)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    latencies = sorted(float(row["response-time"]) for row in rows)
    statuses = [row["status-code"] for row in rows]
    ok = statuses.count("200")
    end = max(float(row["offset"]) + float(row["response-time"]) for row in rows)
    return {
        "requests": len(rows),
        "ok": ok,
        "errors": len(rows) - ok,
        "wall_s": round(wall, 2),
        "images_per_s": round(ok / end, 3),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[max(0, int(round(0.95 * len(latencies))) - 1)], 3),
    }


def server_memory(server: Server) -> dict[int, dict[str, float]]:
    """Per serving process: gunicorn's workers and their engine processes (not the master),
    or rembg's one process."""
    cutout = server.name.startswith("Cutout")
    pids = descendants(server.process.pid) if cutout else [server.process.pid]
    return {pid: memory_mb(pid) for pid in pids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests-per-client", type=int, default=6)
    parser.add_argument("--min-requests", type=int, default=24)
    parser.add_argument("--soak", type=int, default=2000)
    parser.add_argument("--soak-clients", type=int, default=8)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--workers", type=int, default=0, help="WEB_CONCURRENCY (default: conf)")
    parser.add_argument("--threads", type=int, default=0, help="CUTOUT_INFERENCE_THREADS")
    parser.add_argument("--no-rembg", action="store_true")
    parser.add_argument(
        "--layouts", default="conf", help=f"Cutout's serving layouts, of {','.join(LAYOUTS)}"
    )
    parser.add_argument("--out", default=str(REPO / "var" / "bench" / "load.json"))
    args = parser.parse_args()
    # A terminated run still stops the servers it started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which("hey"):
        raise SystemExit("hey is not installed (apt-get install hey)")
    levels = [int(level) for level in args.levels.split(",")]
    photo = one_megapixel_jpeg()
    work = Path(tempfile.mkdtemp(prefix="cutout-load-"))
    servers: list[Server] = []
    results: dict = {
        "photo_bytes": len(photo),
        "photo_size": ONE_MP,
        "model": args.model,
        "cores": len(os.sched_getaffinity(0)),
        "load": {},
        "memory_after_load": {},
        "soak": [],
        "layouts": {name: layout_env(name) for name in args.layouts.split(",")},
        "loadavg": [],
    }
    try:
        for layout in args.layouts.split(","):
            servers.append(start_cutout(work, photo, args, layout))
        if not args.no_rembg:
            servers.append(start_rembg(work, photo, args))
        for server in servers:
            for _ in range(3):  # warm-up: sessions, caches, the first rembg session load
                status = server.post_once()
                if status != 200:
                    raise SystemExit(f"{server.name} answered {status} to the warm-up")
        for run in range(args.runs):
            for turn, level in enumerate(levels):
                requests = max(args.min_requests, level * args.requests_per_client)
                shift = (run * len(levels) + turn) % len(servers)  # who goes first rotates
                for server in servers[shift:] + servers[:shift]:
                    figures = run_hey(server, requests, level, work)
                    results["load"].setdefault(server.name, {}).setdefault(str(level), []).append(
                        figures
                    )
                    figures["loadavg"] = os.getloadavg()
                    log(f"run {run + 1} {server.name:6} c={level}: {figures}")
        for server in servers:
            results["memory_after_load"][server.name] = server_memory(server)
        if args.soak:
            cutout = servers[0]
            chunk = args.soak // 10
            for index in range(10):
                figures = run_hey(cutout, chunk, args.soak_clients, work)
                sample = {
                    "requests_done": chunk * (index + 1),
                    "images_per_s": figures["images_per_s"],
                    "p95_s": figures["p95_s"],
                    "errors": figures["errors"],
                    "workers": server_memory(cutout),
                }
                results["soak"].append(sample)
                log(f"soak {sample}")
    finally:
        for server in servers:
            server.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    log(f"results in {out}; logs in {work}")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def markdown(results: dict) -> str:
    load = results["load"]
    rem_levels = load.get("rembg", {})
    lines = [
        "| server | clients | images/s (min–max) | ÷ rembg | p50 / p95 s | rembg images/s | "
        "rembg p50 / p95 s | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, levels in load.items():
        if name == "rembg":
            continue
        for level, cut in levels.items():
            rem = rem_levels.get(level)
            errors = sum(r["errors"] for r in cut) + sum(r["errors"] for r in rem or [])
            rates = [r["images_per_s"] for r in cut]
            cut_rate = median_of(cut, "images_per_s")
            row = [name, level, f"{cut_rate:.2f} ({min(rates):.2f}–{max(rates):.2f})"]
            if rem:
                rem_rate = median_of(rem, "images_per_s")
                row.append(f"{cut_rate / rem_rate:.2f}×")
            else:
                row.append("–")
            row.append(f"{median_of(cut, 'p50_s'):.2f} / {median_of(cut, 'p95_s'):.2f}")
            if rem:
                row.append(f"{median_of(rem, 'images_per_s'):.2f}")
                row.append(f"{median_of(rem, 'p50_s'):.2f} / {median_of(rem, 'p95_s'):.2f}")
            else:
                row += ["–", "–"]
            row.append(str(errors))
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("| process | RSS MB after the load runs | peak (VmHWM) MB |")
    lines.append("| --- | ---: | ---: |")
    for name, processes in results["memory_after_load"].items():
        for pid, memory in processes.items():
            label = f"{name} process {pid}"
            lines.append(f"| {label} | {memory['VmRSS']:.0f} | {memory['VmHWM']:.0f} |")
    loads = [f["loadavg"][0] for levels in load.values() for runs in levels.values() for f in runs]
    if loads:
        lines.append("")
        lines.append(f"1-minute load average during the runs: {min(loads):.1f}–{max(loads):.1f}")
    soak = results["soak"]
    if soak:
        lines.append("")
        pids = list(soak[0]["workers"])
        header = "| requests done | images/s | p95 s | errors | " + " | ".join(
            f"worker {pid} RSS MB" for pid in pids
        )
        lines.append(header + " |")
        lines.append("| ---: | ---: | ---: | ---: |" + " ---: |" * len(pids))
        for sample in soak:
            rss = [
                f"{sample['workers'].get(pid, {}).get('VmRSS', float('nan')):.0f}" for pid in pids
            ]
            lines.append(
                f"| {sample['requests_done']} | {sample['images_per_s']:.2f} | "
                f"{sample['p95_s']:.2f} | {sample['errors']} | " + " | ".join(rss) + " |"
            )
        first, last = soak[0]["workers"], soak[-1]["workers"]
        growth = [
            f"worker {pid}: {100 * (last[pid]['VmRSS'] / first[pid]['VmRSS'] - 1):+.1f} %"
            for pid in pids
            if pid in last
        ]
        lines.append("")
        lines.append(
            f"RSS growth from {soak[0]['requests_done']} to {soak[-1]['requests_done']} "
            "requests: " + ", ".join(growth)
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
