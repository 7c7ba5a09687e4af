"""Baidu's two wire formats: the segment endpoint's and the token endpoint's.

`baidu` (every path under `/rest/`): every error is HTTP 200 with
`{"error_code", "error_msg", "log_id"}`, Baidu's numeric code from codes.py (neutral code
→ Baidu's). `baidu-oauth` (under `/oauth/`): OAuth's `{"error", "error_description"}` with
401 for the client, 400 for the grant.
"""

from django.urls import path, re_path

from removal import errors
from removal.api import formats
from removal.api.baidu import schema, views  # noqa: F401  (schema: the OpenAPI descriptions)
from removal.api.baidu.codes import BAIDU_MESSAGES, DETAILED, baidu_code
from removal.errors import RemovalError, check_codes


def render_segment_error(
    error: RemovalError, status: int, context: formats.ErrorContext
) -> formats.ErrorAnswer:
    code = baidu_code(error)
    message = BAIDU_MESSAGES[code]
    if code in DETAILED:
        message = f"{message}: {error.message}"
    return formats.ErrorAnswer({"error_code": code, "error_msg": message, "log_id": context.log_id})


# OAuth's error names; the descriptions for a bad client are Baidu's own words.
OAUTH_ERRORS = {
    errors.NO_CREDENTIALS: ("invalid_client", "unknown client id"),
    errors.UNKNOWN_CLIENT: ("invalid_client", "unknown client id"),
    errors.BAD_CREDENTIALS: ("invalid_client", "Client authentication failed"),
    errors.UNSUPPORTED_GRANT_TYPE: (
        "unsupported_grant_type",
        "The authorization grant type is not supported",
    ),
    errors.RATE_LIMITED: ("temporarily_unavailable", None),
    errors.INTERNAL: ("server_error", None),
}
check_codes("baidu-oauth errors", OAUTH_ERRORS)


def render_oauth_error(
    error: RemovalError, status: int, context: formats.ErrorContext
) -> formats.ErrorAnswer:
    name, description = OAUTH_ERRORS.get(error.code, ("invalid_request", None))
    return formats.ErrorAnswer({"error": name, "error_description": description or error.message})


SEGMENT = formats.WireFormat(
    name="baidu",
    prefix="/rest/",
    render_error=render_segment_error,
    status_for_every_error=200,
    routes=[
        re_path(
            r"^rest/2\.0/image-process/v1/segment/?$",
            views.SegmentView.as_view(),
            name="baidu_segment",
        ),
    ],
)

OAUTH = formats.WireFormat(
    name="baidu-oauth",
    prefix="/oauth/",
    render_error=render_oauth_error,
    routes=[path("oauth/2.0/token", views.TokenView.as_view(), name="baidu_token")],
)
