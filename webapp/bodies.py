"""Request bodies at the edge, for every path (API and website alike).

Django reads no body without a `Content-Length`: a chunked upload would reach the views as an
empty body ("no image given"). gunicorn de-chunks such a body and says so with
`wsgi.input_terminated`; `DechunkedBodyApp` reads it, never more than the upload cap plus one
byte, and passes it on with its length. `BodyLimitMiddleware` then answers from the headers,
before anything reads the body (removal/api/body.py holds the rule): 413 over
`CUTOUT_MAX_UPLOAD_MB`, 411 for a chunked body the server did not de-chunk (runserver). It has
to run before the views: DRF's CSRF check for the website's session calls parses the whole
body while looking for a form token, long before a view's own size check. Paths of a wire
format (removal/api/formats.py) are left to their views, which check the same rule after
authentication, in the order their contract gives (401 before 413).
"""

import tempfile
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from removal.api import formats
from removal.api.body import check_body_size
from removal.errors import RemovalError

# The website's upload calls answer in Pixian's format (removal/views.py).
WEBSITE_ERRORS = "pixian"

READ_SIZE = 64 * 1024


def _declares_no_length(environ: dict) -> bool:
    return not environ.get("CONTENT_LENGTH") and bool(environ.get("HTTP_TRANSFER_ENCODING"))


class _ClosingResult:
    """The app's response, closing the buffered body once the server is done with it."""

    def __init__(self, result: Iterable[bytes], body: tempfile.SpooledTemporaryFile) -> None:
        self.result = result
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            self.body.close()


class DechunkedBodyApp:
    """WSGI wrapper: a body the server de-chunked gets a `Content-Length`, read up to the cap
    plus one byte (enough for the middleware's 413) into a file that spills to disk."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not (_declares_no_length(environ) and environ.get("wsgi.input_terminated")):
            return self.app(environ, start_response)
        limit = settings.CUTOUT_MAX_UPLOAD_MB * 1024 * 1024
        body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
        stream = environ["wsgi.input"]
        size = 0
        while size <= limit:
            # Ask for no more than is still wanted: a server's reader may wait for the rest.
            chunk = stream.read(min(READ_SIZE, limit + 1 - size))
            if not chunk:
                break
            body.write(chunk)
            size += len(chunk)
        body.seek(0)
        environ = {**environ, "CONTENT_LENGTH": str(size), "wsgi.input": body}
        return _ClosingResult(self.app(environ, start_response), body)


class BodyLimitMiddleware:
    """413 or 411 from the request's headers, before any code reads its body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if formats.for_path(request.path_info) is None:
            try:
                check_body_size(request.META)
            except RemovalError as error:
                wire_format = formats.get(WEBSITE_ERRORS)
                return formats.error_response(wire_format, error, formats.context_of(request))
        return self.get_response(request)
