import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from removal import request_ids


class RequestIdMiddleware:
    """Give every request an id, echoed as `X-Request-Id` and used in logs and error bodies,
    and its start (`time.monotonic()`), from which an engine counts the time it has left."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_ids.new_request_id()
        request.started = time.monotonic()
        response = self.get_response(request)
        response.setdefault("X-Request-Id", request.request_id)
        return response
