"""What every wire format's OpenAPI part shares (drf-spectacular): the authentication schemes,
response headers, error responses with an example per status, and the document's hooks.

The document at `/api/schema/` describes the views of the registered public formats
(formats.py) and nothing else; each format describes its own views in its `schema.py`.
"""

from collections.abc import Iterable
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from removal.api import formats
from removal.errors import ERRORS, RemovalError

BINARY = {"type": "string", "format": "binary"}
CREDITS_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"

STATUS_MEANINGS = {
    200: "The request failed; this format answers every error with HTTP 200.",
    400: "The request is at fault: the message says how to fix it.",
    401: "Missing, malformed or wrong credentials.",
    402: "Not enough credits, or they have lapsed.",
    403: "Missing, malformed or wrong credentials, or not allowed.",
    404: "No such endpoint.",
    405: "Method not allowed (the `Allow` header lists the allowed ones).",
    409: "A request with this `Idempotency-Key` is still in progress.",
    411: "The body was sent chunked, without a Content-Length header.",
    413: "The request body is larger than the upload limit.",
    415: "The request's content type is not accepted.",
    422: "The request cannot be processed as sent.",
    429: "Rate or concurrency limit reached: retry after `Retry-After` seconds.",
    500: "Cutout's fault: quote the `X-Request-Id` when reporting it; the client may retry.",
    502: "Reseller mode: the upstream service failed.",
    503: "Reseller mode: the upstream service is unavailable or out of credits.",
    504: "Reseller mode: the upstream service timed out.",
}


class BasicApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "removal.auth.BasicApiKeyAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "User name: the API id; password: the API secret.",
        }


class HeaderApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "removal.auth.HeaderApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "'API_ID:API_SECRET' (remove.bg's header; Pixian clients use Basic).",
        }


def header(
    name: str,
    description: str,
    statuses: Iterable[int],
    pattern: str | None = None,
    required: bool = True,
) -> OpenApiParameter:
    """A response header, present on answers with one of `statuses`."""
    schema = {"type": "string"} if pattern is None else {"type": "string", "pattern": pattern}
    return OpenApiParameter(
        name,
        schema,
        location=OpenApiParameter.HEADER,
        response=list(statuses),
        required=required,
        description=description,
    )


# Reseller mode's answer header, on every result an upstream may have served.
ENGINE_HEADER_SCHEMA = header(
    "X-Cutout-Engine",
    "Reseller mode only: `upstream`, or `local` when the local engine served the call in "
    "the upstream's place (`CUTOUT_RESELLER_FALLBACK=local`).",
    [200],
    "^(upstream|local)$",
    required=False,
)


def codes_by_status(format_name: str) -> dict[int, list[int]]:
    """The neutral codes each HTTP status of this format carries."""
    wire_format = formats.get(format_name)
    by_status: dict[int, list[int]] = {}
    for code in ERRORS:
        by_status.setdefault(wire_format.status_for(code), []).append(code)
    return by_status


def error_responses(format_name: str, body_schema: dict, statuses: Iterable[int]) -> dict:
    """One response per status: the format's error body, the codes it carries, and an example
    rendered by the format itself from the first of them."""
    wire_format = formats.get(format_name)
    by_status = codes_by_status(format_name)
    responses = {}
    for status in statuses:
        codes = by_status.get(status, [])
        listed = "; ".join(f"`{code}` {ERRORS[code].message}" for code in codes)
        description = STATUS_MEANINGS[status] + (f" Codes: {listed}" if listed else "")
        examples = []
        if codes:
            error = RemovalError(codes[0])
            answer = wire_format.render_error(error, status, formats.ErrorContext("0" * 32, 1))
            examples = [OpenApiExample(f"{status}", value=answer.body, status_codes=[status])]
        responses[status] = OpenApiResponse(body_schema, description=description, examples=examples)
    return responses


def public_endpoints(endpoints: list) -> list:
    """Preprocessing hook: keep only the views of registered public formats."""
    public = {fmt.name for fmt in formats.registered() if fmt.public}
    return [
        endpoint
        for endpoint in endpoints
        if getattr(getattr(endpoint[3], "cls", None), "wire_format", None) in public
        and formats.for_path(endpoint[0]) is not None
    ]


def canonical_paths(result: dict, generator: Any, request: Any, public: Any) -> dict:
    """Postprocessing hook: paths as the vendors' clients spell them, without the trailing
    slash that some URL patterns tolerate."""
    result["paths"] = {path.rstrip("/"): item for path, item in result["paths"].items()}
    return result
