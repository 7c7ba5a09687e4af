"""The API's one exception handler: every failure becomes a `RemovalError`, rendered in the
wire format of the view that failed (`error_format` on the view; Pixian's by default).

Each wire format has its own renderer below; add remove.bg's and Baidu's beside Pixian's.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer
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
    if isinstance(exc, SuspiciousOperation):
        # Django's own refusals while parsing a body: too many fields or files, and the like.
        return RemovalError(1010, f"The request body could not be parsed: {exc}")
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
    response = render(error, error_format, request_id)
    if isinstance(exc, drf.MethodNotAllowed) and view is not None:
        response["Allow"] = ", ".join(view.allowed_methods)
    return response


# Paths that belong to an API, with the wire format their errors take when no view of the
# API answered (no URL matched, or a failure outside the view). Add remove.bg's and Baidu's.
API_PATH_FORMATS: list[tuple[str, str]] = [("/api/", "pixian")]


def _api_format(request) -> str | None:
    path = request.path_info or ""
    return next((fmt for prefix, fmt in API_PATH_FORMATS if path.startswith(prefix)), None)


def plain_error_response(error: RemovalError, error_format: str, request_id: str) -> HttpResponse:
    """The same error as `render`, for code outside DRF (Django's error handlers)."""
    drf_response = render(error, error_format, request_id)
    response = HttpResponse(
        JSONRenderer().render(drf_response.data),
        status=drf_response.status_code,
        content_type="application/json",
    )
    for name, value in drf_response.items():
        if name.lower() != "content-type":
            response[name] = value
    return response


def error_response(request, error: RemovalError) -> HttpResponse:
    """`error` for a request no view has taken yet (middleware): in the format of the API whose
    path it is, else Pixian's, which the website's own upload calls speak."""
    fmt = _api_format(request) or "pixian"
    return plain_error_response(error, fmt, getattr(request, "request_id", ""))


def bad_request(request, exception):
    fmt = _api_format(request)
    if fmt is None:
        return defaults.bad_request(request, exception)
    return plain_error_response(RemovalError(1010), fmt, getattr(request, "request_id", ""))


def permission_denied(request, exception):
    fmt = _api_format(request)
    if fmt is None:
        return defaults.permission_denied(request, exception)
    return plain_error_response(RemovalError(4030), fmt, getattr(request, "request_id", ""))


def page_not_found(request, exception):
    fmt = _api_format(request)
    if fmt is None:
        return defaults.page_not_found(request, exception)
    message = f"Not found: no API endpoint at {request.path_info[:200]}."
    return plain_error_response(
        RemovalError(4040, message), fmt, getattr(request, "request_id", "")
    )


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """The last URL pattern under an API prefix, so unknown API paths answer JSON even with
    DEBUG on (Django's handler404 only runs with DEBUG off)."""
    return page_not_found(request, None)


def server_error(request):
    """Django's handler500: it has logged the exception already (logger django.request); the
    line below ties that to the request id the client sees."""
    fmt = _api_format(request)
    if fmt is None:
        return defaults.server_error(request)
    request_id = getattr(request, "request_id", "")
    logger.error("unexpected error outside the API views, request %s", request_id)
    error = RemovalError(5000, f"Internal error; quote request id {request_id} when reporting it.")
    return plain_error_response(error, fmt, request_id)
