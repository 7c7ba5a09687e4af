"""Drop-to-preview time on the website's upload page, in Debian's Chromium.

    .venv/bin/python bench/upload_page.py --model u2netp --runs 5 --megapixels 1 4

Serves the site from this process (a throw-away SQLite database, the real engine and static
files), signs a user with credits in, and drops skimage's astronaut as a JPEG of each size on
the page: one warm-up, then --runs timed drops, each a new upload (charged, as a customer's
would be), answered with a Delta PNG that the page rebuilds. The page records its own marks
in milliseconds since the drop: the upload sent, the server's answer, the result shown. The
engine's own analyse + render for the same file, timed in-process right after, shows how much
of the wait is inference; the machine is shared, so compare the columns of one run.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("CUTOUT_MODEL", "u2net"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cutout-bench-page-"))
    os.environ["CUTOUT_MODEL"] = args.model
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM beside Playwright's loop

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from django.test import Client
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from skimage import data as skdata

    from billing import ledger
    from removal import active_engine
    from removal.engine.types import RemovalOptions
    from webapp.models import User

    settings.MEDIA_ROOT = workdir / "media"
    # Static files straight from static/, without collectstatic's manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench@example.com", "bench-password-0123456789")
    ledger.grant(user, Decimal(10_000), "bench-grant")
    remover = active_engine.get_remover()

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    astronaut = Image.fromarray(skdata.astronaut())
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--disable-background-networking", "--no-sandbox", "--headless=new"],
        )
        context = browser.new_context()
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base}])
        page = context.new_page()
        for megapixels in args.megapixels:
            scale = (megapixels * 1e6 / (astronaut.width * astronaut.height)) ** 0.5
            size = (round(astronaut.width * scale), round(astronaut.height * scale))
            path = workdir / f"astronaut-{megapixels:g}mp.jpg"
            astronaut.resize(size).save(path, "JPEG", quality=90)
            marks, loads = [], []
            for run in range(args.runs + 1):
                page.goto(base + "/remove/")
                page.wait_for_selector("#uploader[data-ready=true]")
                page.uncheck("#opt-test")
                page.set_input_files("#file-input", path)
                page.wait_for_function("document.getElementById('uploader').dataset.shown")
                mark = json.loads(page.get_attribute("#uploader", "data-last-preview-marks"))
                assert page.get_attribute("#viewer", "data-kind") == "delta"
                if run:
                    marks.append(mark)
                    loads.append(os.getloadavg()[0])
            engine = []
            data = path.read_bytes()
            for _ in range(args.runs):
                start = time.perf_counter()
                cutout = remover.analyse(data, RemovalOptions())
                remover.render(cutout, RemovalOptions(output_format="delta_png"))
                engine.append((time.perf_counter() - start) * 1000)
            rows.append((size, marks, engine, loads))
        browser.close()
    server.shutdown()
    shutil.rmtree(workdir, ignore_errors=True)

    def median(values) -> str:
        values = list(values)
        return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"

    print(f"\nmodel {args.model}, {args.runs} runs each, medians (min–max) in ms since the drop\n")
    print(
        "| input | upload sent | server answered | preview shown | engine alone "
        "| load average (1 min) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for (width, height), marks, engine, loads in rows:
        print(
            f"| {width}×{height} JPEG | {median(m['sent'] for m in marks)} "
            f"| {median(m['answered'] for m in marks)} | {median(m['shown'] for m in marks)} "
            f"| {median(engine)} | {min(loads):.1f}–{max(loads):.1f} |"
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
