"""Pixian v2 as a wire format: its prefix, its routes and its error JSON.

Every path under `/api/` answers Pixian's errors (`{"error": {"status", "code",
"message"}}`), unknown paths included; a 401 carries `WWW-Authenticate: Basic`.
"""

from django.urls import path, re_path

from removal.api import formats
from removal.api.pixian import schema, views  # noqa: F401  (schema: the OpenAPI descriptions)
from removal.errors import RemovalError

BASIC_CHALLENGE = 'Basic realm="Cutout"'


def render_error(
    error: RemovalError, status: int, context: formats.ErrorContext
) -> formats.ErrorAnswer:
    body = {"error": {"status": status, "code": error.code, "message": error.message}}
    headers = {"WWW-Authenticate": BASIC_CHALLENGE} if status == 401 else {}
    return formats.ErrorAnswer(body, headers)


FORMAT = formats.WireFormat(
    name="pixian",
    prefix="/api/",
    render_error=render_error,
    routes=[
        # Pixian's clients post without a trailing slash; one more is tolerated.
        re_path(
            r"^api/v2/remove-background/?$",
            views.RemoveBackgroundView.as_view(),
            name="pixian_remove_background",
        ),
        path("api/v2/account", views.AccountView.as_view(), name="pixian_account"),
    ],
)
