"""Gunicorn for Cutout: `gunicorn -c gunicorn.conf.py webapp.wsgi` (or `make serve`).

Sizing: inference is CPU-bound, so workers × CUTOUT_INFERENCE_THREADS should equal the cores.
Measured on 2 cores (docs/BENCHMARKS.md, "Serving under load"): 2 workers × 1 thread gives
the most images per second, 1 worker × 2 threads the lowest latency for a single request.
The default here is throughput: one single-threaded worker per core. Override with
WEB_CONCURRENCY (workers) and CUTOUT_INFERENCE_THREADS (threads per worker).

Each worker loads and warms the engine once, after it has loaded Django and before it accepts
its first request (`post_worker_init`), never per request. The model is not loaded in the
master (no preload): onnxruntime's thread pools do not survive a fork.
"""

import os

from gunicorn.glogging import Logger


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_threads = int(os.environ.get("CUTOUT_INFERENCE_THREADS") or 1)
# Django's settings read this in each worker: one place decides the split.
os.environ["CUTOUT_INFERENCE_THREADS"] = str(_threads)

wsgi_app = "webapp.wsgi:application"
bind = ["127.0.0.1:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY") or max(1, _cores() // _threads))
# One request at a time per worker: the model already uses the worker's share of the cores.
worker_class = "sync"
threads = 1
# Above the upstream deadline (CUTOUT_UPSTREAM_DEADLINE_S, 170 s) plus the fetch of image.url,
# so that gunicorn never kills a request that is still within its own deadlines.
timeout = 240
# A restart or a deploy lets started requests finish: the spec forbids dropping them.
graceful_timeout = 240
keepalive = 5
# Requests wait here while every worker is busy instead of being refused.
backlog = 2048
accesslog = "-"
# The common log format with the serving worker's pid, so a log shows which worker answered.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" pid=%(p)s'
errorlog = "-"


class ScrubbingLogger(Logger):
    """gunicorn's logger, with `access_token=` and `client_secret=` values scrubbed from the
    access log's request line (`%(r)s`, Baidu's clients send both in the query) and from
    error lines (webapp/logs.py)."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        from webapp.logs import ScrubSecrets

        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, ScrubSecrets) for f in log.filters):
                log.addFilter(ScrubSecrets())


logger_class = ScrubbingLogger
# Keep the worker heartbeat off a disk-backed /tmp (containers often have a slow overlay).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def post_worker_init(worker: object) -> None:
    """Load and warm the engine before this worker takes traffic."""
    from removal import active_engine

    active_engine.get_remover()
    worker.log.info(
        "worker %s: engine loaded and warm (%s inference thread(s))", worker.pid, _threads
    )
