"""Baidu's part of the OpenAPI document (drf-spectacular), true to the wire formats: the token
endpoint (query or form parameters, OAuth errors) and the segment endpoint (JSON or form body,
every answer HTTP 200, an error told apart by its `error_code`)."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from removal.api.baidu.codes import BAIDU_MESSAGES
from removal.api.baidu.options import IMAGE_MAX_CHARS, METHODS, RETURN_FORMS, URL_MAX_BYTES
from removal.api.openapi import header

TAGS = ["Baidu"]
_LOG_ID = {
    "type": "integer",
    "minimum": 0,
    "maximum": 2**53 - 1,
    "description": "This call's id, also in the server's log: quote it when reporting a problem.",
}
SEGMENT_RESULT = {
    "type": "object",
    "required": ["log_id", "image"],
    "properties": {
        "log_id": _LOG_ID,
        "image": {
            "type": "string",
            "format": "byte",
            "description": "The result PNG in base64: transparent (`rgba`) or a one-channel "
            "binary mask (`mask`).",
        },
    },
}
SEGMENT_ERROR = {
    "type": "object",
    "required": ["error_code", "error_msg", "log_id"],
    "properties": {
        "error_code": {
            "type": "integer",
            "enum": sorted(BAIDU_MESSAGES),
            "description": "Baidu's code (the README's table): "
            + "; ".join(f"`{code}` {msg}" for code, msg in sorted(BAIDU_MESSAGES.items())),
        },
        "error_msg": {"type": "string"},
        "log_id": _LOG_ID,
    },
}
OAUTH_ERROR = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_client",
                "unsupported_grant_type",
                "invalid_request",
                "temporarily_unavailable",
                "server_error",
            ],
        },
        "error_description": {"type": "string"},
    },
}
TOKEN = {
    "type": "object",
    "required": [
        "access_token",
        "expires_in",
        "scope",
        "refresh_token",
        "session_key",
        "session_secret",
    ],
    "properties": {
        "access_token": {"type": "string", "description": "Send it as `?access_token=`."},
        "expires_in": {"type": "integer", "enum": [2592000], "description": "30 days."},
        "scope": {"type": "string", "description": "Space-separated; has `brain_all_scope`."},
        "refresh_token": {"type": "string", "description": "Unusable: refreshing is refused."},
        "session_key": {"type": "string"},
        "session_secret": {"type": "string"},
    },
}
_TOKEN_PARAMETERS = {
    "grant_type": {"type": "string", "enum": ["client_credentials"]},
    "client_id": {"type": "string", "description": "The Cutout API id."},
    "client_secret": {"type": "string", "description": "The Cutout API secret."},
}


def _segment_fields() -> dict:
    return {
        "image": {
            "type": "string",
            "maxLength": IMAGE_MAX_CHARS,
            "description": "Base64 of a JPG, PNG, WEBP or BMP (no `data:` header), sides "
            "128-3000 px. Wins over `url`.",
        },
        "url": {
            "type": "string",
            "maxLength": URL_MAX_BYTES,
            "description": "An image URL, fetched under the rules of Pixian's `image.url`.",
        },
        "return_form": {"type": "string", "enum": list(RETURN_FORMS), "default": "rgba"},
        "refine_mask": {"type": "string", "enum": ["true", "false"], "default": "true"},
        "method": {"type": "string", "enum": list(METHODS), "default": "auto"},
        "position": {
            "description": "With `method=control`: boxes `[[[x1,y1],[x2,y2]], …]` in pixels "
            f"(1 to {settings.CUTOUT_MAX_REGIONS}, each at least 10 × 10 px inside the image); "
            "in a form, as a JSON string.",
        },
        "access_token": {"type": "string", "description": "When not in the query."},
    }


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "removal.api.baidu.auth.AccessTokenAuthentication"
    name = "baiduAccessToken"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "apiKey",
            "in": "query",
            "name": "access_token",
            "description": "From `/oauth/2.0/token` (the body's `access_token` works too).",
        }


class TokenSchema(OpenApiViewExtension):
    target_class = "removal.api.baidu.views.TokenView"

    def view_replacement(self) -> type:
        described = {
            "tags": TAGS,
            "summary": "An access token for the segment endpoint",
            "description": "Baidu's `client_credentials` grant with the Cutout API id and "
            "secret, in the query or a form body.",
            "parameters": [
                *(
                    OpenApiParameter(name, schema, location=OpenApiParameter.QUERY)
                    for name, schema in _TOKEN_PARAMETERS.items()
                ),
                header("Retry-After", "Seconds to wait before retrying.", [429], "^[0-9]+$"),
                OpenApiParameter("format", exclude=True),
            ],
            "responses": {
                200: OpenApiResponse(TOKEN),
                400: OpenApiResponse(
                    OAUTH_ERROR,
                    description="A grant other than `client_credentials`, or a bad request.",
                ),
                401: OpenApiResponse(OAUTH_ERROR, description="`invalid_client`."),
                405: OpenApiResponse(OAUTH_ERROR, description="Method not allowed."),
                429: OpenApiResponse(OAUTH_ERROR, description="Too many failures."),
            },
        }
        form = {"type": "object", "properties": _TOKEN_PARAMETERS}

        @extend_schema_view(
            get=extend_schema(operation_id="baidu_token_get", **described),
            post=extend_schema(
                operation_id="baidu_token",
                request={"application/x-www-form-urlencoded": form},
                **described,
            ),
        )
        class Described(self.target_class):
            pass

        return Described


class SegmentSchema(OpenApiViewExtension):
    target_class = "removal.api.baidu.views.SegmentView"

    def view_replacement(self) -> type:
        fields = _segment_fields()

        @extend_schema_view(
            post=extend_schema(
                operation_id="baidu_segment",
                tags=TAGS,
                summary="Segment an image, Baidu's way",
                description="Baidu AI Cloud's 智能抠图, to the letter: every answer is HTTP "
                "200, an error has `error_code`. Checks run in this order: the token, the rate "
                "and concurrency limits, the parameters, the image, the balance.",
                parameters=[OpenApiParameter("format", exclude=True)],
                request={
                    "application/json": {"type": "object", "properties": fields},
                    "application/x-www-form-urlencoded": {"type": "object", "properties": fields},
                },
                responses={
                    200: OpenApiResponse(
                        {"oneOf": [SEGMENT_RESULT, SEGMENT_ERROR]},
                        description="The result, or an error with Baidu's `error_code`.",
                        examples=[
                            OpenApiExample(
                                "error",
                                value={
                                    "error_code": 110,
                                    "error_msg": BAIDU_MESSAGES[110],
                                    "log_id": 376935981086617,
                                },
                            )
                        ],
                    ),
                },
            )
        )
        class Described(self.target_class):
            pass

        return Described
