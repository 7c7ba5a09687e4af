"""The registry of wire formats: which URL prefix speaks which API, and how its errors look.

A wire format (Pixian v2, remove.bg, Baidu, …) registers itself with one call, `register()`,
from an app's `ready()` (this project's formats: `removal/apps.py`). Everything that must know
"which format is this path?" asks the registry: the API exception handler, Django's 400/403/
404/500 handlers, the catch-all 404 under each prefix, and the OpenAPI document's public paths.
A format's routes are served through `routes()`, which reads the registry at every resolution,
so a format registered later (another app, a test) is routed without editing any URLconf.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, re_path

from billing.formatting import dumps
from removal.errors import RemovalError, check_codes, spec_for


@dataclass(frozen=True)
class ErrorContext:
    """What an error renderer may put in the body beside the error itself."""

    request_id: str = ""
    log_id: int = 0


@dataclass(frozen=True)
class ErrorAnswer:
    """A format's error: the JSON body and any headers of its own (WWW-Authenticate, …)."""

    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


ErrorRenderer = Callable[[RemovalError, int, ErrorContext], ErrorAnswer]


@dataclass(frozen=True)
class WireFormat:
    """One API's wire format.

    `prefix` is the URL path every route of the format starts with ("/api/"); a path under it
    that no route matches answers 404 in this format. `statuses` overrides the neutral table's
    HTTP status per code; `status_for_every_error` answers every error with one status
    (Baidu's segment endpoint: 200). `public` formats are described in the OpenAPI document.
    """

    name: str
    prefix: str
    render_error: ErrorRenderer
    routes: Sequence[URLPattern | URLResolver] = ()
    statuses: Mapping[int, int] = field(default_factory=dict)
    status_for_every_error: int | None = None
    public: bool = True

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise ValueError(f"{self.name}: a prefix starts and ends with '/': {self.prefix!r}")
        check_codes(f"{self.name} statuses", self.statuses)

    def status_for(self, code: int) -> int:
        if self.status_for_every_error is not None:
            return self.status_for_every_error
        return self.statuses.get(code, spec_for(code).status)


_formats: dict[str, WireFormat] = {}


def register(wire_format: WireFormat) -> None:
    """Add a format (again with the same name: replace it, so a reloaded app is harmless)."""
    for other in _formats.values():
        if other.prefix == wire_format.prefix and other.name != wire_format.name:
            raise ValueError(f"prefix {wire_format.prefix} is taken by {other.name}")
    _formats[wire_format.name] = wire_format


def unregister(name: str) -> None:
    _formats.pop(name, None)


def get(name: str) -> WireFormat:
    return _formats[name]


def registered() -> list[WireFormat]:
    return list(_formats.values())


def for_path(path: str) -> WireFormat | None:
    """The format whose prefix is the longest that `path` starts with, or None (a web page)."""
    matches = [fmt for fmt in _formats.values() if path.startswith(fmt.prefix)]
    return max(matches, key=lambda fmt: len(fmt.prefix), default=None)


def for_view(view: object, path: str) -> WireFormat | None:
    """The format a view declares (`wire_format = "pixian"`), else the one of its path."""
    name = getattr(view, "wire_format", None)
    if name in _formats:
        return _formats[name]
    return for_path(path)


class ErrorResponse(HttpResponse):
    """An error's JSON, already rendered; `data` keeps the body it was rendered from (as DRF's
    Response does), for the tests and the call record."""

    def __init__(self, body: Any, status: int) -> None:
        super().__init__(
            dumps(body).encode("utf-8"), status=status, content_type="application/json"
        )
        self.data = body


def error_response(
    wire_format: WireFormat, error: RemovalError, context: ErrorContext
) -> ErrorResponse:
    """The error as `wire_format` answers it, with `Retry-After` and `X-Request-Id`."""
    status = wire_format.status_for(error.code)
    answer = wire_format.render_error(error, status, context)
    response = ErrorResponse(answer.body, status)
    for name, value in answer.headers.items():
        response[name] = value
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    if context.request_id:
        response["X-Request-Id"] = context.request_id
    return response


def context_of(request: HttpRequest) -> ErrorContext:
    from removal import request_ids

    request_id = getattr(request, "request_id", "")
    return ErrorContext(request_id=request_id, log_id=request_ids.log_id(request_id))


# --- routing -----------------------------------------------------------------------------------


class _LivePatterns(Sequence):
    """The registered formats' routes, read afresh at every resolution."""

    def __init__(self, build: Callable[[], list]) -> None:
        self._build = build

    def __getitem__(self, index: Any) -> Any:
        return self._build()[index]

    def __len__(self) -> int:
        return len(self._build())

    def __iter__(self) -> Iterator:
        return iter(self._build())


def _routes() -> list:
    return [route for fmt in _formats.values() for route in fmt.routes]


def _catch_alls() -> list:
    from removal.api import handlers

    ordered = sorted(_formats.values(), key=lambda fmt: len(fmt.prefix), reverse=True)
    return [re_path(f"^{fmt.prefix.lstrip('/')}", handlers.api_not_found) for fmt in ordered]


def routes() -> _LivePatterns:
    """For `include()`: every registered format's routes."""
    return _LivePatterns(_routes)


def catch_alls() -> _LivePatterns:
    """For `include()` at the end of the URLconf: a JSON 404 under each format's prefix, in
    that format, with DEBUG on or off (Django's handler404 only runs with DEBUG off)."""
    return _LivePatterns(_catch_alls)
