"""The OpenAPI descriptions of remove.bg v1.0's views (drf-spectacular extensions)."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from removal.api.openapi import (
    BINARY,
    CREDITS_PATTERN,
    ENGINE_HEADER_SCHEMA,
    error_responses,
    header,
)
from removal.api.removebg.options import (
    CHANNELS,
    FORMATS,
    MAX_BASE64_CHARS,
    SIZES,
)

TAG = "remove.bg v1.0"
ERROR_BODY = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["title", "code", "detail"],
                "properties": {
                    "title": {"type": "string", "description": "A short, fixed title."},
                    "code": {
                        "type": "string",
                        "description": "remove.bg's error code (the README's table).",
                    },
                    "detail": {"type": "string", "description": "What to fix, for a human."},
                },
            },
        }
    },
}
_ERRORS = (400, 402, 403, 404, 405, 409, 411, 413, 415, 422, 429, 500, 502, 503, 504)
_COMMON_HEADERS = [
    header("Retry-After", "Seconds to wait before retrying.", [429], "^[0-9]+$"),
    header("Allow", "The methods this endpoint answers.", [405]),
    header("X-Request-Id", "This request's id (in the logs too).", [200, *_ERRORS]),
]
_INT = "^[0-9]+$"
RESULT_HEADERS = [
    header("X-Credits-Charged", "Credits charged (0 for test calls).", [200], CREDITS_PATTERN),
    header(
        "X-Credits-Calculated",
        "Test calls only: what a production call would have charged.",
        [200],
        CREDITS_PATTERN,
        required=False,
    ),
    ENGINE_HEADER_SCHEMA,
    header("X-Width", "The result's width in pixels.", [200], _INT),
    header("X-Height", "The result's height in pixels.", [200], _INT),
    header("X-Type", "Always `other` (Cutout does not classify).", [200], "^other$"),
    header("X-Foreground-Top", "The foreground box in the result.", [200], _INT),
    header("X-Foreground-Left", "The foreground box in the result.", [200], _INT),
    header("X-Foreground-Width", "The foreground box in the result.", [200], _INT),
    header("X-Foreground-Height", "The foreground box in the result.", [200], _INT),
    header(
        "X-Max-Width",
        "When the input was shrunk: the widest result this `size` allows.",
        [200],
        _INT,
        required=False,
    ),
    header(
        "X-Max-Height",
        "When the input was shrunk: the tallest result this `size` allows.",
        [200],
        _INT,
        required=False,
    ),
    header("X-RateLimit-Limit", "Requests per minute.", [200], _INT, required=False),
    header("X-RateLimit-Remaining", "Requests left this minute.", [200], _INT, required=False),
    header("X-RateLimit-Reset", "Unix time the minute ends.", [200], _INT, required=False),
    header(
        "Idempotent-Replayed",
        "`true` when this is the stored answer to an earlier request with the same key.",
        [200, *_ERRORS],
        "^true$",
        required=False,
    ),
    *_COMMON_HEADERS,
]


def _text(description: str) -> dict:
    return {"type": "string", "description": description}


OPTIONS = {
    "size": _text("One of " + ", ".join(SIZES) + " (any case; default `preview`)."),
    "type": _text("Accepted and ignored."),
    "type_level": _text("Accepted and ignored."),
    "format": _text("One of " + ", ".join(FORMATS) + " (default `auto`)."),
    "roi": _text("`x1 y1 x2 y2`, all in px or all in % (default `0% 0% 100% 100%`)."),
    "crop": _text("`true` or `false`."),
    "crop_margin": _text("1, 2 or 4 lengths in px or %, at most 500px or 50% each."),
    "scale": _text("`original` or 10% to 100%."),
    "position": _text("`original`, `center`, or 1-2 percentages."),
    "channels": _text("One of " + ", ".join(CHANNELS) + "."),
    "add_shadow": _text("Accepted and ignored."),
    "semitransparency": _text("Accepted and ignored."),
    "bg_color": _text("Hex (3, 4, 6 or 8 digits, `#` optional) or a CSS colour name."),
    "bg_image_url": _text("An http(s) URL of a background image (codes 3011-3015)."),
    "test": _text("`true`: free and watermarked."),
}
_IMAGE_FIELDS = {
    "image_file_b64": {
        "type": "string",
        "maxLength": MAX_BASE64_CHARS,
        "description": "The image, base64-encoded (at most 12 MB decoded).",
    },
    "image_url": _text("An http(s) URL Cutout downloads (public addresses only)."),
}
_FILE = {"type": "string", "format": "binary"}


def _request(extra: dict, *, with_files: bool) -> dict:
    form = {"type": "object", "properties": {**_IMAGE_FIELDS, **extra}}
    multipart = {
        "type": "object",
        "properties": {"image_file": _FILE, **_IMAGE_FIELDS, **extra}
        | ({"bg_image_file": _FILE} if with_files else {}),
    }
    return {
        "multipart/form-data": multipart,
        "application/x-www-form-urlencoded": form,
        "application/json": form,
    }


RESULT_JSON = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": [
                "result_b64",
                "foreground_top",
                "foreground_left",
                "foreground_width",
                "foreground_height",
            ],
            "properties": {
                "result_b64": {"type": "string"},
                "foreground_top": {"type": "integer"},
                "foreground_left": {"type": "integer"},
                "foreground_width": {"type": "integer"},
                "foreground_height": {"type": "integer"},
            },
        }
    },
}


class RemoveBgSchema(OpenApiViewExtension):
    target_class = "removal.api.removebg.views.RemoveBgView"

    def view_replacement(self) -> type:
        @extend_schema_view(
            post=extend_schema(
                operation_id="removebg_removebg",
                tags=[TAG],
                summary="Remove the background of an image (remove.bg compatible)",
                description="remove.bg's v1.0 endpoint: send exactly one of `image_file`, "
                "`image_file_b64` and `image_url`. Checks run in this order: credentials (403), "
                "limits (429), body size (413), parameters and image header (400), balance "
                f"(402), the work. Bodies up to {settings.CUTOUT_MAX_UPLOAD_MB} MB.",
                request=_request(OPTIONS, with_files=True),
                parameters=[
                    OpenApiParameter(
                        "Idempotency-Key",
                        {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[ -~]*[!-~][ -~]*$",
                        },
                        location=OpenApiParameter.HEADER,
                        description="Repeat a request with the same key to get the same answer.",
                    ),
                    *RESULT_HEADERS,
                    OpenApiParameter("format", exclude=True),
                ],
                responses={
                    (200, "image/png"): OpenApiResponse(BINARY, description="PNG result."),
                    (200, "image/jpeg"): OpenApiResponse(BINARY, description="JPEG result."),
                    (200, "image/webp"): OpenApiResponse(BINARY, description="WebP result."),
                    (200, "application/zip"): OpenApiResponse(
                        BINARY, description="`color.jpg` and `alpha.png`."
                    ),
                    (200, "application/json"): OpenApiResponse(
                        RESULT_JSON, description="With `Accept: application/json`."
                    ),
                    **error_responses("removebg", ERROR_BODY, _ERRORS),
                },
            )
        )
        class Described(self.target_class):
            pass

        return Described


ACCOUNT_BODY = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "properties": {
                "attributes": {
                    "type": "object",
                    "properties": {
                        "credits": {
                            "type": "object",
                            "properties": {
                                name: {"type": "number"}
                                for name in ("total", "subscription", "payg", "enterprise")
                            },
                        },
                        "api": {
                            "type": "object",
                            "properties": {
                                "free_calls": {"type": "integer"},
                                "sizes": {"type": "string"},
                            },
                        },
                    },
                }
            },
        }
    },
}


class AccountSchema(OpenApiViewExtension):
    target_class = "removal.api.removebg.views.AccountView"

    def view_replacement(self) -> type:
        @extend_schema_view(
            get=extend_schema(
                operation_id="removebg_account",
                tags=[TAG],
                summary="The account's credits, in remove.bg's shape",
                parameters=_COMMON_HEADERS,
                responses={
                    200: OpenApiResponse(ACCOUNT_BODY),
                    **error_responses("removebg", ERROR_BODY, (403, 405, 429, 500)),
                },
            )
        )
        class Described(self.target_class):
            pass

        return Described


IMPROVE_FIELDS = {
    "image_filename": _text("The image's file name, kept with it."),
    "tag": _text("A label of yours, kept with it."),
}


class ImproveSchema(OpenApiViewExtension):
    target_class = "removal.api.removebg.views.ImproveView"

    def view_replacement(self) -> type:
        @extend_schema_view(
            post=extend_schema(
                operation_id="removebg_improve",
                tags=[TAG],
                summary="Send an image for Cutout to learn from (free; 100 a day)",
                request=_request(IMPROVE_FIELDS, with_files=False),
                parameters=[*_COMMON_HEADERS, OpenApiParameter("format", exclude=True)],
                responses={
                    200: OpenApiResponse(
                        {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string"}},
                        }
                    ),
                    **error_responses(
                        "removebg", ERROR_BODY, (400, 403, 405, 411, 413, 415, 429, 500)
                    ),
                },
            )
        )
        class Described(self.target_class):
            pass

        return Described
