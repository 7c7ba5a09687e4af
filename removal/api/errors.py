"""The API's one exception handler: every failure becomes a `RemovalError`, rendered in the
wire format of the view that failed (`error_format` on the view; Pixian's by default).

Each wire format has its own renderer below; add remove.bg's and Baidu's beside Pixian's.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from removal.errors import RemovalError

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[Exception], int]] = [
    (drf.NotAuthenticated, 4001),
    (drf.AuthenticationFailed, 4002),
    (drf.Throttled, 4290),
    (drf.MethodNotAllowed, 4050),
    (drf.NotFound, 4040),
    (Http404, 4040),
    (drf.UnsupportedMediaType, 4150),
    (RequestDataTooBig, 1004),
]


def as_removal_error(exc: Exception) -> RemovalError | None:
    """The neutral error for `exc`, or None when it is unexpected (a bug: 500)."""
    if isinstance(exc, RemovalError):
        return exc
    for cls, code in _DRF_CODES:
        if isinstance(exc, cls):
            wait = getattr(exc, "wait", None)
            return RemovalError(code, retry_after=int(wait) + 1 if wait else None)
    if isinstance(exc, drf.ParseError):
        return RemovalError(1010, f"The request body could not be parsed: {exc.detail}")
    if isinstance(exc, drf.PermissionDenied | PermissionDenied):
        return RemovalError(4030)
    return None


def render_pixian(error: RemovalError) -> Response:
    body = {"error": {"status": error.status, "code": error.code, "message": error.message}}
    response = Response(body, status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Cutout"'
    return response


RENDERERS = {"pixian": render_pixian}


def render(error: RemovalError, error_format: str = "pixian", request_id: str = "") -> Response:
    response = RENDERERS[error_format](error)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    if request_id:
        response["X-Request-Id"] = request_id
    return response


def exception_handler(exc: Exception, context: dict) -> Response:
    view = context.get("view")
    request = context.get("request")
    request_id = getattr(getattr(request, "_request", request), "request_id", "")
    error_format = getattr(view, "error_format", "pixian")
    error = as_removal_error(exc)
    if error is None:
        logger.exception("unexpected error in %s, request %s", type(view).__name__, request_id)
        error = RemovalError(
            5000, f"Internal error; quote request id {request_id} when reporting it."
        )
    return render(error, error_format, request_id)
