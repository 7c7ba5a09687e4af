"""Several hosts, simulated on one machine (run as root): two app hosts and two worker hosts,
each its own network namespace with one veth pair, pinned to its own core set with one
inference thread, sharing only PostgreSQL, Redis and an S3 server (moto).

    sudo .venv/bin/python bench/multihost.py                 # a 200-item batch
    sudo .venv/bin/python bench/multihost.py --items 40 --throughput-items 20   # a quick look

What it builds (and removes again, even after a failure):
- namespaces `cutout-app1`, `cutout-app2`, `cutout-wk1`, `cutout-wk2`; host n is 198.18.n.2
  and sees the machine as 198.18.n.1 (RFC 2544's benchmarking range, on veth pairs that
  exist only while this runs);
- a TCP relay (this file, `--relay`) in the machine's namespace: 198.18.n.1's PostgreSQL,
  Redis and S3 ports to the servers on 127.0.0.1 (their configuration is never touched),
  and the front: 127.0.0.1:`--front-port` round-robin over the two app hosts' gunicorns,
  skipping one that refuses connections, as a load balancer would;
- moto's S3 server on 127.0.0.1, a fresh database (`--database-url`, dropped and created)
  and a key prefix of its own in Redis (`--redis-url`; nothing else there is touched).

Then: the batch's throughput with one worker host and with two (`--throughput-items` each,
same per-host core set); then the main run: an `--items` batch submitted through the front
while `--callers` accounts send rounds of 2 × `--rate` calls at once through it; one worker
host is killed (SIGKILL to every process in its namespace) when a quarter of the items are
done and one app host at half; a new app host joins when the batch ends and the results are
read through both. Prints what each check found; exits non-zero when one fails.
"""

import argparse
import asyncio
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
PREFIX = "198.18"
S3_BUCKET = "cutout-multihost"
S3_ID, S3_SECRET = "multihost-id", "multihost-secret"
APP_PORT = 8000
PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "cat", "immunohistochemistry")


# --- the relay (a separate process: `--relay spec.json`) ------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def _relay(spec: dict) -> None:
    """Each listener forwards every connection to its targets in turn, skipping a target that
    refuses; counts connections per target in `spec["stats"]` (JSON, rewritten each second)."""
    stats: dict[str, Counter] = defaultdict(Counter)

    def listener(name: str, targets: list[list]) -> object:
        turn = [0]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            start = turn[0]
            turn[0] += 1
            for offset in range(len(targets)):
                host, port = targets[(start + offset) % len(targets)]
                try:
                    up_reader, up_writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), 3
                    )
                except (OSError, TimeoutError):
                    stats[name][f"{host}:{port} refused"] += 1
                    continue
                stats[name][f"{host}:{port}"] += 1
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            writer.close()

        return handle

    for entry in spec["listeners"]:
        host, port = entry["listen"]
        await asyncio.start_server(listener(entry["name"], entry["targets"]), host, port)
    Path(spec["ready"]).write_text("ready")
    while True:
        await asyncio.sleep(1)
        Path(spec["stats"]).write_text(json.dumps(stats))


def relay_main(spec_path: str) -> None:
    asyncio.run(_relay(json.loads(Path(spec_path).read_text())))


# --- hosts ------------------------------------------------------------------------------------


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


@dataclass
class Host:
    name: str
    index: int
    cores: str
    data_dir: Path = Path()
    process: subprocess.Popen | None = None
    killed_pids: set[int] = field(default_factory=set)

    @property
    def netns(self) -> str:
        return f"cutout-{self.name}"

    @property
    def address(self) -> str:
        return f"{PREFIX}.{self.index}.2"

    @property
    def gateway(self) -> str:
        """The machine, as this host sees it (where the relay listens for it)."""
        return f"{PREFIX}.{self.index}.1"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{APP_PORT}"

    def create(self) -> None:
        self.destroy()
        root, inner = f"cmh{self.index}r", f"cmh{self.index}n"
        sh("ip", "netns", "add", self.netns)
        sh("ip", "link", "add", root, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", self.netns)
        sh("ip", "addr", "add", f"{self.gateway}/30", "dev", root)
        sh("ip", "link", "set", root, "up")
        sh("ip", "-n", self.netns, "addr", "add", f"{self.address}/30", "dev", inner)
        sh("ip", "-n", self.netns, "link", "set", inner, "up")
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")

    def pids(self) -> set[int]:
        done = sh("ip", "netns", "pids", self.netns, check=False)
        return {int(pid) for pid in done.stdout.split()} if done.returncode == 0 else set()

    def cpu_seconds(self) -> float:
        """User and system CPU time of every process now in the namespace (the host's)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def kill(self) -> set[int]:
        """The host dies: SIGKILL to every process in its namespace."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait(30)
            self.process = None
        self.killed_pids |= pids
        return pids

    def stop(self) -> None:
        """A graceful stop (SIGTERM, as an operator's service manager would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def destroy(self) -> None:
        self.kill()
        sh("ip", "netns", "del", self.netns, check=False)
        sh("ip", "link", "del", f"cmh{self.index}r", check=False)

    def start(self, command: list[str], env: dict[str, str], log_name: str) -> None:
        log = open(self.data_dir / log_name, "a")  # noqa: SIM115  (the child keeps it)
        # A session of its own: under the kernel's autogroup scheduling each session is one
        # group with one share of the CPUs, so hosts in this script's session would split one
        # share between them however many there were; a machine has its own CPUs.
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "taskset", "-c", self.cores, *command],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()


@dataclass
class Site:
    """The shared services as the hosts reach them, and every host's environment."""

    database_url: str
    redis_url: str
    s3_port: int
    secret: str
    cache_prefix: str
    rate: int
    lease_s: int
    hosts: list[Host]

    def env(self, host: Host, data_dir: Path) -> dict[str, str]:
        def via(url: str) -> str:
            parts = urlsplit(url)
            netloc = parts.netloc.replace(parts.hostname or "", host.gateway)
            return urlunsplit(parts._replace(netloc=netloc))

        data_dir.mkdir(parents=True, exist_ok=True)
        models = data_dir / "models"
        if not models.exists():
            models.symlink_to(REPO / "var" / "models")
        keep = {"PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV"}
        return {
            **{name: value for name, value in os.environ.items() if name in keep},
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SECRET_KEY": self.secret,
            "DJANGO_ALLOWED_HOSTS": ",".join(["127.0.0.1", *(h.address for h in self.hosts)]),
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "CUTOUT_HOSTS": str(len(self.hosts)),
            "CUTOUT_DATA_DIR": str(data_dir),
            "CUTOUT_MODEL": "u2netp",
            "CUTOUT_INFERENCE_THREADS": "1",
            "CUTOUT_ENGINE_PROCESSES": "1",
            "WEB_CONCURRENCY": "1",
            "CUTOUT_CACHE_PREFIX": self.cache_prefix,
            "CUTOUT_RATE_LIMIT_PER_MINUTE": str(self.rate),
            "CUTOUT_BATCH_LEASE_S": str(self.lease_s),
            "DATABASE_URL": via(self.database_url),
            "REDIS_URL": via(self.redis_url),
            "AWS_STORAGE_BUCKET_NAME": S3_BUCKET,
            "AWS_S3_ENDPOINT_URL": f"http://{host.gateway}:{self.s3_port}",
            "AWS_ACCESS_KEY_ID": S3_ID,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_S3_REGION_NAME": "us-east-1",
        }

    def start_app(self, host: Host, data_dir: Path) -> None:
        host.data_dir = data_dir
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        host.start(
            [*command, "--bind", f"{host.address}:{APP_PORT}"],
            self.env(host, data_dir),
            "gunicorn.log",
        )

    def start_worker(self, host: Host, data_dir: Path) -> None:
        host.data_dir = data_dir
        command = [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.2"]
        host.start([*command, "--no-startup-delay"], self.env(host, data_dir), "worker.log")


def wait_ready(host: Host, wait_s: float = 180) -> None:
    import requests

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{host.url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    log = (host.data_dir / "gunicorn.log").read_text()[-3000:]
    raise SystemExit(f"{host.name} did not become ready:\n{log}")


# --- the shared services --------------------------------------------------------------------


def fresh_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True)


def start_moto(port: int, log_dir: Path) -> subprocess.Popen:
    import boto3
    import requests

    log = open(log_dir / "moto.log", "w")  # noqa: SIM115  (the child keeps it)
    moto = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.2)
    boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=S3_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    ).create_bucket(Bucket=S3_BUCKET)
    return moto


def start_relay(site: Site, front_port: int, apps: list[Host], run_dir: Path) -> subprocess.Popen:
    db, redis_port = urlsplit(site.database_url), urlsplit(site.redis_url).port or 6379
    listeners = []
    for host in site.hosts:
        for name, port in (("postgres", db.port or 5432), ("redis", redis_port)):
            listeners.append(
                {"name": name, "listen": [host.gateway, port], "targets": [["127.0.0.1", port]]}
            )
        listeners.append(
            {
                "name": "s3",
                "listen": [host.gateway, site.s3_port],
                "targets": [["127.0.0.1", site.s3_port]],
            }
        )
    listeners.append(
        {
            "name": "front",
            "listen": ["127.0.0.1", front_port],
            "targets": [[app.address, APP_PORT] for app in apps],
        }
    )
    spec = {
        "listeners": listeners,
        "stats": str(run_dir / "relay-stats.json"),
        "ready": str(run_dir / "relay-ready"),
    }
    (run_dir / "relay.json").write_text(json.dumps(spec))
    relay = subprocess.Popen(
        [sys.executable, __file__, "--relay", str(run_dir / "relay.json")],
        stdout=open(run_dir / "relay.log", "w"),  # noqa: SIM115  (the child keeps it)
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        if Path(spec["ready"]).exists():
            return relay
        time.sleep(0.1)
    raise SystemExit(f"the relay did not start: {(run_dir / 'relay.log').read_text()}")


def front_stats(run_dir: Path) -> dict:
    path = run_dir / "relay-stats.json"
    return json.loads(path.read_text()).get("front", {}) if path.exists() else {}


# --- the site's accounts and traffic (Django in this process, on the shared database) ---------


def photos(count: int, size: tuple[int, int]) -> list[bytes]:
    from PIL import Image
    from skimage import data

    made = []
    for n in range(len(PHOTOS)):
        image = Image.fromarray(getattr(data, PHOTOS[n])()).convert("RGB").resize(size)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        made.append(buffer.getvalue())
    return [made[n % len(made)] for n in range(count)]


def account(email: str, credits: int) -> tuple[object, tuple[str, str]]:
    from django.core.management import call_command

    from removal import keys
    from webapp.models import User

    user = User.objects.create_user(email, secrets.token_urlsafe(16))
    call_command("grant_credits", email, str(credits), stdout=io.StringIO())
    key, secret = keys.create_key(user, "bench")
    return user, (key.key_id, secret)


def patient(method: str, url: str, **kwargs: object) -> object:
    """A request that waits out the account's rate limit (429's Retry-After), as a client
    should; the batch account shares the small per-minute allowance of the run."""
    import requests

    for _ in range(10):
        answer = requests.request(method, url, timeout=300, **kwargs)
        if answer.status_code != 429:
            return answer
        time.sleep(int(answer.headers.get("Retry-After", "5")) + 0.5)
    return answer


def submit_batch(front: str, key: tuple[str, str], images: list[bytes]) -> str:
    """Multipart, 100 files a request (the API's cap), then start: all through the front."""
    batch_id = ""
    for first in range(0, len(images), 100):
        chunk = images[first : first + 100]
        files = [("image", (f"{first + n}.jpg", body)) for n, body in enumerate(chunk)]
        path = f"/api/v2/batches/{batch_id}/items" if batch_id else "/api/v2/batches"
        answer = patient("POST", front + path, auth=key, files=files)
        assert answer.status_code in (200, 201), answer.text[:300]
        batch_id = batch_id or answer.json()["id"]
    answer = patient("POST", f"{front}/api/v2/batches/{batch_id}/start", auth=key)
    assert answer.status_code == 200, answer.text[:300]
    return batch_id


def wait_batch(batch_id: str, on_progress=None, wait_s: float = 3600) -> None:
    from batches.models import Batch, BatchItem

    deadline = time.monotonic() + wait_s
    while Batch.objects.get(pk=batch_id).finished_at is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"batch {batch_id} did not finish in {wait_s} s")
        if on_progress is not None:
            on_progress(BatchItem.objects.filter(batch_id=batch_id, state="succeeded").count())
        time.sleep(0.5)


def throughput(batch_id: str) -> tuple[float, float]:
    """(items per second from the first item's end to the last's, wall seconds from start)."""
    from batches.models import Batch, BatchItem

    batch = Batch.objects.get(pk=batch_id)
    ends = sorted(BatchItem.objects.filter(batch=batch).values_list("finished_at", flat=True))
    steady = (len(ends) - 1) / max(1e-6, (ends[-1] - ends[0]).total_seconds())
    return steady, (batch.finished_at - batch.started_at).total_seconds()


@dataclass
class Traffic:
    """Rounds of 2 × rate calls at once per account through the front, until stopped."""

    front: str
    keys: list[tuple[str, str]]
    rate: int
    image: bytes
    stop: threading.Event = field(default_factory=threading.Event)
    # (account index, minute window of the round, status or "lost")
    results: list[tuple[int, int, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, index: int, window: int) -> None:
        import requests

        try:
            status: object = requests.post(
                f"{self.front}/api/v2/remove-background",
                auth=self.keys[index],
                files={"image": ("s.jpg", self.image)},
                headers={"Connection": "close"},
                timeout=120,
            ).status_code
        except requests.RequestException:
            status = "lost"
        with self.lock:
            self.results.append((index, window, status))

    def account(self, index: int) -> None:
        while not self.stop.is_set():
            # Not in a minute's last seconds, so each round is counted in one window.
            if time.time() % 60 > 55:
                self.stop.wait(60.5 - time.time() % 60)
                continue
            window = int(time.time() // 60)
            calls = [
                threading.Thread(target=self.call, args=(index, window), daemon=True)
                for _ in range(2 * self.rate)
            ]
            for thread in calls:
                thread.start()
            for thread in calls:
                thread.join()
            self.stop.wait(4)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.account, args=(n,), daemon=True)
            for n in range(len(self.keys))
        ]
        for thread in threads:
            thread.start()
        return threads


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200, help="the main run's batch")
    parser.add_argument("--throughput-items", type=int, default=100, help="each throughput run")
    parser.add_argument("--callers", type=int, default=4, help="accounts sending calls")
    parser.add_argument("--rate", type=int, default=5, help="CUTOUT_RATE_LIMIT_PER_MINUTE")
    parser.add_argument("--size", default="320x240", help="the photos' size, WxH")
    parser.add_argument(
        "--database-url",
        default="postgres://cutout:cutout@127.0.0.1:5432/cutout_multihost_bench",
        help="dropped and created afresh",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--s3-port", type=int, default=15900)
    parser.add_argument("--front-port", type=int, default=15980)
    parser.add_argument("--relay", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        relay_main(args.relay)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: it creates network namespaces")
    size = tuple(int(side) for side in args.size.split("x"))

    run_dir = Path(tempfile.mkdtemp(prefix="cutout-multihost-"))
    app1, app2 = Host("app1", 1, "0"), Host("app2", 2, "1")
    wk1, wk2 = Host("wk1", 3, "0"), Host("wk2", 4, "1")
    hosts = [app1, app2, wk1, wk2]
    site = Site(
        database_url=args.database_url,
        redis_url=args.redis_url,
        s3_port=args.s3_port,
        secret=secrets.token_urlsafe(50),
        cache_prefix=f"multihost-{secrets.token_hex(4)}",
        rate=args.rate,
        lease_s=10,
        hosts=hosts,
    )
    front = f"http://127.0.0.1:{args.front_port}"
    services: list[subprocess.Popen] = []
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}", flush=True)
        if not ok:
            failures.append(what)

    try:
        fresh_database(args.database_url)
        services.append(start_moto(args.s3_port, run_dir))
        # This process is the operator's shell on the machine: Django on the same services.
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "webapp.settings",
                "DJANGO_SECRET_KEY": site.secret,
                "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
                "CUTOUT_DATA_DIR": str(run_dir / "operator"),
                "CUTOUT_MODEL": "u2netp",
                "DATABASE_URL": args.database_url,
                "REDIS_URL": args.redis_url,
                "CUTOUT_CACHE_PREFIX": site.cache_prefix,
            }
        )
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        for host in hosts:
            host.create()
        services.append(start_relay(site, args.front_port, [app1, app2], run_dir))
        for app in (app1, app2):
            site.start_app(app, run_dir / app.name)
        for app in (app1, app2):
            wait_ready(app)
        load = os.getloadavg()
        print(f"hosts up: {', '.join(f'{h.name} {h.address} cores {h.cores}' for h in hosts)}")
        print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")

        # --- throughput: one worker host, then two, each on one core ---------------------
        batcher, batcher_key = account("batches@example.com", 100_000)
        rows = []
        for workers in ([wk1], [wk1, wk2]):
            for host in workers:
                site.start_worker(host, run_dir / f"{host.name}-t{len(workers)}")
            images = photos(args.throughput_items, size)
            load_before = os.getloadavg()[0]
            batch_id = submit_batch(front, batcher_key, images)
            wait_batch(batch_id)
            steady, wall = throughput(batch_id)
            cpu = sum(host.cpu_seconds() for host in workers)
            rows.append((len(workers), steady, wall, cpu, load_before, os.getloadavg()[0]))
            for host in workers:
                host.stop()
        print("\nthroughput (items per second, first item's end to last item's end):")
        print(
            "| worker hosts | items | items/s | batch wall s | workers' CPU s per item "
            "| load before | load after |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for workers, steady, wall, cpu, before, after in rows:
            print(
                f"| {workers} | {args.throughput_items} | {steady:.2f} | {wall:.1f} "
                f"| {cpu / args.throughput_items:.2f} | {before:.1f} | {after:.1f} |"
            )
        print(f"two worker hosts / one: {rows[1][1] / rows[0][1]:.2f}x items/s")

        # --- the main run: batch + calls, one worker host and one app host killed ---------
        callers = [account(f"caller{n}@example.com", 1000) for n in range(args.callers)]
        for host in (wk1, wk2):
            site.start_worker(host, run_dir / host.name)
        traffic = Traffic(front, [key for _, key in callers], args.rate, photos(1, size)[0])
        batch_id = submit_batch(front, batcher_key, photos(args.items, size))
        threads = traffic.start()
        killed: dict[str, tuple[float, int]] = {}

        def on_progress(done: int) -> None:
            if "wk1" not in killed and done >= args.items // 4:
                killed["wk1"] = (time.time(), done)
                pids = sorted(wk1.kill())
                print(f"\nkilled worker host wk1 at {done}/{args.items} items: pids {pids}")
            if "app2" not in killed and done >= args.items // 2:
                killed["app2"] = (time.time(), done)
                print(
                    f"killed app host app2 at {done}/{args.items} items: pids {sorted(app2.kill())}"
                )

        started = time.time()
        wait_batch(batch_id, on_progress)
        print(f"batch of {args.items} finished in {time.time() - started:.1f} s")
        traffic.stop.set()
        for thread in threads:
            thread.join()
        wk2.stop()

        # A new app host joins (a fresh data folder: nothing local is needed) and the results
        # are read through both.
        site.start_app(app2, run_dir / "app2-new")
        wait_ready(app2)
        print("app host app2 re-added with a fresh data folder")
        report(
            batch_id,
            args,
            batcher,
            callers,
            traffic,
            killed,
            wk1,
            [app1, app2],
            check,
            batcher_key,
            run_dir,
        )
        load = os.getloadavg()
        print(f"\nload average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        for host in hosts:
            host.destroy()
        for service in services:
            service.terminate()
            service.wait(30)
    print(f"\n{'ALL CHECKS PASSED' if not failures else f'{len(failures)} CHECK(S) FAILED'}")
    print(f"logs: {run_dir}")
    sys.exit(1 if failures else 0)


def report(batch_id, args, batcher, callers, traffic, killed, wk1, apps, check, key, run_dir):
    from django.core.management import call_command

    from batches.models import BatchItem
    from billing import ledger
    from billing.models import CreditAccount, LedgerEntry

    print("\nevery item done exactly once:")
    items = list(BatchItem.objects.filter(batch_id=batch_id).order_by("number"))
    states = Counter(item.state for item in items)
    check(states == Counter({"succeeded": args.items}), f"item states {dict(states)}")
    charges = list(
        LedgerEntry.objects.filter(kind="charge", reference__startswith=f"batch:{batch_id}:")
    )
    references = {entry.reference for entry in charges}
    check(
        len(charges) == len(references) == args.items,
        f"{len(charges)} charges, {len(references)} distinct references, {args.items} items",
    )
    on_wk1 = [i for i in items if int(i.worker.rsplit(":", 1)[1]) in wk1.killed_pids]
    taken_over = [i for i in items if i.attempts > 1]
    print(
        f"  items finished by wk1 before it died: {len(on_wk1)}; "
        f"by wk2: {len(items) - len(on_wk1)}; "
        f"taken over after the kill (attempts > 1): {len(taken_over)}"
    )

    print("\nper-account limits across both app hosts (rounds of 2 x rate calls at once):")
    per_window: dict[tuple[int, int], Counter] = defaultdict(Counter)
    for index, window, status in traffic.results:
        per_window[(index, window)][status] += 1
    totals = Counter(status for _, _, status in traffic.results)
    most = max((c[200] for c in per_window.values()), default=0)
    print(f"  calls {len(traffic.results)}: {dict(totals)}")
    print(f"  front's connections per app host: {front_stats(run_dir)}")
    check(totals[429] > 0, f"429s counted: {totals[429]}")
    check(
        most <= args.rate,
        f"most 200s of one account in one minute: {most} (limit {args.rate}, each round "
        f"sends {args.rate} through each app host)",
    )
    lost_after = [(window, status) for _, window, status in traffic.results if status == "lost"]
    print(f"  calls lost with the killed app host (connection cut): {len(lost_after)}")

    print("\nledger:")
    released = io.StringIO()
    call_command("release_stale_reservations", "--older-than-minutes", "0", stdout=released)
    print(f"  release_stale_reservations (calls cut with app2): {released.getvalue().strip()}")
    problems = ledger.check()
    check(problems == [], f"check_ledger: {len(problems)} problem(s)")
    items_run = args.throughput_items * 2 + args.items
    charged = 100_000 - ledger.balance(batcher)
    check(charged == items_run, f"batch account charged {charged} for {items_run} items")
    for n, (user, _) in enumerate(callers):
        ok = sum(1 for index, _, status in traffic.results if index == n and status == 200)
        charged = 1000 - ledger.balance(user)
        check(charged == ok, f"caller{n}: {ok} answers 200, charged {charged}")
    held = CreditAccount.objects.filter(held__gt=0).count()
    check(held == 0, f"accounts with credits still held: {held}")

    print("\nresults readable from both app hosts (S3):")
    zips = []
    for app in apps:
        answer = patient("GET", f"{app.url}/api/v2/batches/{batch_id}/results.zip", auth=key)
        with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
            zips.append({name: archive.read(name) for name in archive.namelist()})
        check(
            answer.status_code == 200 and len(zips[-1]) == args.items,
            f"{app.name}: results.zip {answer.status_code}, {len(zips[-1])} results",
        )
    check(zips[0] == zips[1], "both app hosts' zips hold the same bytes")
    single = [
        patient("GET", f"{app.url}/api/v2/batches/{batch_id}/items/{n}", auth=key)
        for n, app in enumerate(apps)
    ]
    check(
        all(
            s.status_code == 200 and s.content == zips[0][f"{n}.png"] for n, s in enumerate(single)
        ),
        "item 0 through app1 and item 1 through app2 equal the zip's",
    )


if __name__ == "__main__":
    main()
