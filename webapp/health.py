"""Health endpoints for a load balancer; both are exempt from the HTTPS redirect (settings).

- `/healthz`: the process is up and answering (liveness). It touches nothing else, so a slow
  database never gets a healthy worker restarted.
- `/readyz`: this worker can serve removals: the database answers and the engine is loaded
  (gunicorn's post_fork hook loads it before the worker takes traffic).
"""

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readiness: database unreachable: %s", exc)
        return "unreachable"
    return "ok"


def engine_status() -> str:
    try:
        from removal import active_engine

        active_engine.warm()
    except Exception:  # a boundary: any failure to load means "not ready", logged in full
        logger.exception("readiness: the engine did not load")
        return "not loaded"
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": database_status(), "engine": engine_status()}
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
