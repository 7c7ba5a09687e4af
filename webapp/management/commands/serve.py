"""`manage.py serve [--bind HOST:PORT]`: production serving, nginx in front of gunicorn.

Writes nginx's configuration (webapp/serving.py) under the data folder, starts gunicorn
(gunicorn.conf.py) on a loopback port and nginx on `--bind`, and runs until either exits or
the command gets SIGTERM/SIGINT, which stops both gracefully. nginx is Debian's package
(`scripts/install-nginx`). Our nginx is one more trusted proxy: gunicorn gets
CUTOUT_TRUSTED_PROXY_HOPS + 1.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp import serving

REPO = Path(__file__).resolve().parents[3]


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise CommandError("nginx is not installed: run scripts/install-nginx")
    return found


class Command(BaseCommand):
    help = "Serve Cutout for production: nginx in front of gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000", help="nginx's HOST:PORT")
        parser.add_argument(
            "--app-bind", default="", help="gunicorn's HOST:PORT (default: a free loopback port)"
        )

    def handle(self, *args: str, bind: str, app_bind: str, **options: object) -> None:
        host, _, port = bind.rpartition(":")
        nginx = nginx_binary()
        app = app_bind or f"127.0.0.1:{free_port('127.0.0.1')}"
        run_dir = Path(settings.DATA_DIR) / "serve"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = run_dir / "nginx.conf"
        config.write_text(serving.nginx_config(serving.Ports(host, int(port), app), run_dir))
        check = subprocess.run(
            [nginx, "-t", "-q", "-p", str(run_dir), "-e", "stderr", "-c", str(config)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise CommandError(f"nginx refused {config}: {check.stderr}")
        env = {
            **os.environ,
            "CUTOUT_TRUSTED_PROXY_HOPS": str(settings.CUTOUT_TRUSTED_PROXY_HOPS + 1),
        }
        app_server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", app],
            cwd=REPO,
            env=env,
        )
        proxy = subprocess.Popen(
            [nginx, "-p", str(run_dir), "-e", "stderr", "-c", str(config), "-g", "daemon off;"]
        )
        self.stdout.write(f"serving on http://{bind}/ (nginx → gunicorn at {app})")
        self.stdout.flush()
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping and app_server.poll() is None and proxy.poll() is None:
            time.sleep(0.2)
        # nginx: SIGQUIT finishes the requests in progress; gunicorn: SIGTERM does the same.
        if proxy.poll() is None:
            proxy.send_signal(signal.SIGQUIT)
        if app_server.poll() is None:
            app_server.send_signal(signal.SIGTERM)
        proxy.wait(settings.CUTOUT_REQUEST_TIMEOUT_S + 10)
        app_server.wait(settings.CUTOUT_REQUEST_TIMEOUT_S + 10)
        if not stopping:
            raise CommandError("nginx or gunicorn stopped; see the log above")
