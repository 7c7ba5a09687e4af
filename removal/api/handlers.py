"""Every failure on an API path becomes a `RemovalError`, answered in the path's wire format.

`exception_handler` is DRF's (settings `EXCEPTION_HANDLER`), for failures inside API views;
the Django handlers below (`handler400` … `handler500` in webapp/urls.py) answer the same way
for failures outside them. Which format a path speaks is the registry's (formats.py); web
pages keep Django's own handlers.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework import views as drf_views

from removal import errors
from removal.api import formats
from removal.errors import RemovalError

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[Exception], int]] = [
    (drf.NotAuthenticated, errors.NO_CREDENTIALS),
    (drf.AuthenticationFailed, errors.BAD_CREDENTIALS),
    (drf.MethodNotAllowed, errors.METHOD_NOT_ALLOWED),
    (drf.NotFound, errors.NOT_FOUND),
    (Http404, errors.NOT_FOUND),
    (drf.UnsupportedMediaType, errors.UNSUPPORTED_MEDIA_TYPE),
    (RequestDataTooBig, errors.BODY_TOO_LARGE),
]


def as_removal_error(exc: Exception) -> RemovalError | None:
    """The neutral error for `exc`, or None when it is unexpected (a bug: 500)."""
    if isinstance(exc, RemovalError):
        return exc
    for cls, code in _DRF_CODES:
        if isinstance(exc, cls):
            return RemovalError(code)
    if isinstance(exc, drf.ParseError):
        return RemovalError(
            errors.UNPARSABLE_BODY, f"The request body could not be parsed: {exc.detail}"
        )
    if isinstance(exc, SuspiciousOperation):
        # Django's own refusals while parsing a body: too many fields or files, and the like.
        return RemovalError(errors.UNPARSABLE_BODY, f"The request body could not be parsed: {exc}")
    if isinstance(exc, drf.PermissionDenied | PermissionDenied):
        return RemovalError(errors.FORBIDDEN)
    return None


def internal_error(request_id: str) -> RemovalError:
    return RemovalError(
        errors.INTERNAL, f"Internal error; quote request id {request_id} when reporting it."
    )


def exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    view = context.get("view")
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    request_id = getattr(django_request, "request_id", "")
    wire_format = formats.for_view(view, getattr(django_request, "path_info", "") or "")
    if wire_format is None:
        return drf_views.exception_handler(exc, context)
    error = as_removal_error(exc)
    if error is None:
        logger.exception("unexpected error in %s, request %s", type(view).__name__, request_id)
        error = internal_error(request_id)
    # For the call record (removal/api/recording.py): the neutral code, whatever the format.
    django_request.removal_error = error
    response = formats.error_response(wire_format, error, formats.context_of(django_request))
    if isinstance(exc, drf.MethodNotAllowed) and view is not None:
        response["Allow"] = ", ".join(view.allowed_methods)
    return response


def _answer(request: HttpRequest, error: RemovalError) -> HttpResponse | None:
    wire_format = formats.for_path(request.path_info or "")
    if wire_format is None:
        return None
    return formats.error_response(wire_format, error, formats.context_of(request))


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    answer = _answer(request, RemovalError(errors.UNPARSABLE_BODY))
    return answer or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    answer = _answer(request, RemovalError(errors.FORBIDDEN))
    return answer or defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None) -> HttpResponse:
    message = f"Not found: no API endpoint at {request.path_info[:200]}."
    answer = _answer(request, RemovalError(errors.NOT_FOUND, message))
    return answer or defaults.page_not_found(request, exception)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """The last URL pattern under each format's prefix (see formats.catch_alls)."""
    return page_not_found(request, None)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: it has logged the exception already (logger django.request); the
    line below ties that to the request id the client sees."""
    wire_format = formats.for_path(request.path_info or "")
    if wire_format is None:
        return defaults.server_error(request)
    request_id = getattr(request, "request_id", "")
    logger.error("unexpected error outside the API views, request %s", request_id)
    return formats.error_response(
        wire_format, internal_error(request_id), formats.context_of(request)
    )
