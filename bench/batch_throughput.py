"""Batch throughput: one `--items`-item test batch through 1 and then 2 `db_worker` processes.

    export DATABASE_URL=postgres://cutout:cutout@127.0.0.1:5432/cutout_bench
    python bench/batch_throughput.py
    python bench/batch_throughput.py --items 40 --workers 1 2   # a quick look

Each run migrates a fresh data folder's database (the one DATABASE_URL names; SQLite in the
folder when unset), creates an account, serves `--items` small JPEGs (skimage's chelsea at
`--size`) from a local HTTP server, submits them as one `test=true` batch of `image.url`
items through the real view (Django's test client, in this process), starts the workers with
`manage.py db_worker` and measures from submission to the batch's end. The workers load the
model when their first item comes, so each run's time includes that start-up. Prints a
Markdown row per run, with the load average before and after.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def jpeg(size: tuple[int, int]) -> bytes:
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.chelsea()).resize(size).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def image_server(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def run(items: int, workers: int, size: tuple[int, int], base: str) -> dict:
    from django.core.management import call_command
    from django.test import Client

    from batches.models import Batch, BatchItem
    from removal import keys
    from tests.support_api import basic
    from webapp.models import User

    call_command("migrate", verbosity=0)
    Batch.objects.all().delete()
    user, _ = User.objects.get_or_create(email="bench@example.com")
    key, secret = keys.create_key(user, "bench")
    body = {
        "options": {"test": True, "output.format": "png"},
        "items": [{"image.url": f"{base}/{n}.jpg"} for n in range(items)],
    }
    env = {
        **os.environ,
        "CUTOUT_ALLOW_LOOPBACK_URLS": "1",
        "CUTOUT_BATCH_TEST_ITEMS": str(items),
        "CUTOUT_CONCURRENCY_LIMIT": "0",
    }
    load_before = os.getloadavg()
    started = time.monotonic()
    answer = Client(HTTP_AUTHORIZATION=basic(key.key_id, secret), HTTP_HOST="localhost").post(
        "/api/v2/batches", json.dumps(body), content_type="application/json"
    )
    assert answer.status_code == 201, answer.content
    batch_id = answer.json()["id"]
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        while Batch.objects.get(pk=batch_id).finished_at is None:
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
    succeeded = BatchItem.objects.filter(batch_id=batch_id, state="succeeded").count()
    return {
        "items": items,
        "workers": workers,
        "size": f"{size[0]}×{size[1]}",
        "seconds": round(elapsed, 1),
        "items_per_minute": round(succeeded / elapsed * 60, 1),
        "succeeded": succeeded,
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, nargs=2, default=[160, 120])
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="cutout-batch-bench-"))
    (data_dir / "models").symlink_to(REPO / "var" / "models")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
    os.environ.setdefault("CUTOUT_MODEL", "u2netp")
    os.environ["CUTOUT_DATA_DIR"] = str(data_dir)
    os.environ["CUTOUT_ALLOW_LOOPBACK_URLS"] = "1"
    os.environ["CUTOUT_BATCH_TEST_ITEMS"] = str(args.items)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    server, base = image_server(jpeg(tuple(args.size)))
    try:
        rows = [run(args.items, count, tuple(args.size), base) for count in args.workers]
    finally:
        server.shutdown()
    print("| items | workers | image | seconds | items/min | succeeded | load before → after |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row['items']} | {row['workers']} | {row['size']} | {row['seconds']} | "
            f"{row['items_per_minute']} | {row['succeeded']} | "
            f"{row['load_before']} → {row['load_after']} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
