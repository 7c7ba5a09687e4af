"""Gunicorn for Cutout: `manage.py serve` (or `make serve`) runs it behind nginx; by hand:
`gunicorn -c gunicorn.conf.py`.

Sizing: the CPU-bound work (decoding, inference, rendering) runs in each web worker's pool of
engine processes (CUTOUT_ENGINE_PROCESSES, default one per core; removal/engine/pool.py), so a
web worker's threads only parse, wait and answer. Each engine process runs onnxruntime on
CUTOUT_INFERENCE_THREADS threads, default every core, so a lone request has the whole
machine; when several run at once their threads outnumber the cores, and then they sleep
instead of spinning while they wait for work (removal/active_engine.py), so one process's
waiting threads do not take the cores another's work needs. Measured both ways against one
thread per engine process (docs/BENCHMARKS.md): in float32 on onnxruntime's CPU provider a lone
request is 1.7× faster and 2-8 at once get 9-10 % fewer images/s ("Serving layout"); u2net in
bfloat16 through OpenVINO is ahead at every level, 1 to 8 clients (third round of issue 15).
CUTOUT_INFERENCE_THREADS=1 takes the other side.

Threads (`gthread`) are cheap to keep waiting: a call that waits 170 s on the upstream in
reseller mode, or on an `image.url` download, holds a thread, never a core. One web worker
keeps the engine pool, its paid-before-free queue and the free-work cap in one place; more
(WEB_CONCURRENCY) each get their own pool. Measured in docs/BENCHMARKS.md ("Serving").

Slow clients never reach a thread: nginx in front (`manage.py serve`) reads whole requests
and buffers answers before they touch gunicorn.

Each worker starts and warms its engine processes once, after it has loaded Django and
before it accepts its first request (`post_worker_init`), never per request. Nothing is
loaded in the master (no preload): onnxruntime's thread pools do not survive a fork.
"""

import os

from gunicorn.glogging import Logger


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_threads = int(os.environ.get("CUTOUT_INFERENCE_THREADS") or _cores())
# Django's settings read this in each worker: one place decides the split.
os.environ["CUTOUT_INFERENCE_THREADS"] = str(_threads)

wsgi_app = "webapp.wsgi:application"
bind = ["127.0.0.1:8000"]
# Engine processes per web worker (Django's settings read this in each worker).
# (0: the engine runs in the web worker itself, without the time-out backstop.)
_engine_processes = int(os.environ.get("CUTOUT_ENGINE_PROCESSES", _cores()))
os.environ["CUTOUT_ENGINE_PROCESSES"] = str(_engine_processes)

workers = int(os.environ.get("WEB_CONCURRENCY") or 1)
worker_class = "gthread"
# Requests in flight per worker: waits (engine queue, upstream, image.url) hold threads only.
threads = int(os.environ.get("CUTOUT_WEB_THREADS") or 64)
# gthread's heartbeat: a worker whose main loop stalls this long is restarted. Requests are
# bounded by CUTOUT_REQUEST_TIMEOUT_S (the proxy) and CUTOUT_ENGINE_TIMEOUT_S (the pool).
timeout = 60
# A restart or a deploy lets started requests finish: the spec forbids dropping them.
graceful_timeout = int(os.environ.get("CUTOUT_REQUEST_TIMEOUT_S") or 240)
keepalive = 5
# Requests wait here while every thread is busy instead of being refused.
backlog = 2048
accesslog = "-"
# The common log format with the serving worker's pid, so a log shows which worker answered.
# The path only (%(U)s): a query string may carry an access_token; no header is logged, not
# even the user name gunicorn's %(u)s takes from an Authorization header.
access_log_format = '%(h)s - - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" pid=%(p)s'
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
    """Start and warm the engine before this worker takes traffic."""
    from removal import active_engine

    active_engine.warm()
    worker.log.info(
        "worker %s: engine loaded and warm (%s engine process(es), %s inference thread(s))",
        worker.pid,
        _engine_processes,
        _threads,
    )
