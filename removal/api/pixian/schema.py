"""Pixian v2's part of the OpenAPI 3 document (drf-spectacular), true to the wire format.

DRF cannot infer this API: requests are form fields with dotted names, successes are image
bytes with Pixian's `X-*` headers, and every failure is the error JSON. So the views are
described here, from the spec (spec/pixian-v2.md) and the option parser (options.py), through
spectacular's extension points, which leaves the views themselves free of schema code. The
document is served at `/api/schema/`, rendered at `/api/docs/` (removal/api/openapi.py).
"""

from collections.abc import Iterable

from django.conf import settings
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from removal import fetch
from removal.api.openapi import (
    BINARY,
    CREDITS_PATTERN,
    ENGINE_HEADER_SCHEMA,
    error_responses,
    header,
)
from removal.api.pixian.options import (
    JPEG_QUALITY_RANGE,
    MAX_PIXELS_RANGE,
    OUTPUT_FORMATS,
    VERTICAL_ALIGNMENTS,
)
from removal.inputs import PIXIAN_BASE64_MAX_CHARS

ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {
                    "type": "integer",
                    "minimum": 400,
                    "maximum": 599,
                    "description": "The HTTP status, repeated.",
                },
                "code": {
                    "type": "integer",
                    "description": "Cutout's stable error code (the README's table).",
                },
                "message": {"type": "string", "description": "What went wrong, for a human."},
            },
        }
    },
}


_ALL_ERRORS = (400, 401, 402, 404, 405, 413, 415, 429, 500, 502, 503, 504)
_SIZE = r"^[0-9]+ [0-9]+$"
_BOX = r"^[0-9]+ [0-9]+ [0-9]+ [0-9]+$"

RESULT_HEADERS = [
    header(
        "X-Credits-Charged",
        "Credits charged for this call (0 for test calls), as a plain decimal.",
        [200],
        CREDITS_PATTERN,
    ),
    header(
        "X-Credits-Calculated",
        "Test calls only: what a production call would have charged.",
        [200],
        CREDITS_PATTERN,
        required=False,
    ),
    header(
        "X-Input-Orientation",
        "The EXIF orientation read and applied (1-8; 1 when there is none).",
        [200],
        "^[1-8]$",
    ),
    header("X-Input-Size", "`width height` of the input, before size limits.", [200], _SIZE),
    header("X-Result-Size", "`width height` of the result.", [200], _SIZE),
    header(
        "X-Input-Foreground",
        "`top left width height` of the foreground in input coordinates (`0 0 0 0`: none).",
        [200],
        _BOX,
    ),
    header(
        "X-Result-Foreground",
        "The same box in result coordinates.",
        [200],
        _BOX,
    ),
    ENGINE_HEADER_SCHEMA,
    header(
        "Idempotent-Replayed",
        "`true` when this is the stored answer to an earlier request with the same "
        "`Idempotency-Key`.",
        [200, *_ALL_ERRORS],
        "^true$",
        required=False,
    ),
    header("Retry-After", "Seconds to wait before retrying.", [429], "^[0-9]+$"),
    header("Allow", "The methods this endpoint answers.", [405]),
    header(
        "WWW-Authenticate",
        'Always `Basic realm="Cutout"` on a 401.',
        [401],
    ),
    header(
        "X-Request-Id",
        "This request's id (in the logs too); quote it when reporting a problem.",
        [200, *_ALL_ERRORS],
    ),
]

# Values arrive as form strings; empty or blank counts as not given (the default applies).
_BOOL = r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?\s*$"
_LENGTH = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([Pp][Xx]|%)"
_MARGIN = rf"^\s*({_LENGTH}|0)(\s+({_LENGTH}|0)){{0,3}}\s*$"


def _choice_pattern(choices: Iterable[str]) -> str:
    spelled = [
        "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in choice)
        for choice in choices
    ]
    return r"^\s*(" + "|".join(spelled) + r")\s*$"


OPTIONS = {
    "test": {
        "type": "string",
        "pattern": _BOOL,
        "default": "false",
        "description": "`true` (any case, or `1`): free, watermarked, `X-Credits-Charged: 0` "
        "and `X-Credits-Calculated`.",
    },
    "max_pixels": {
        "type": "string",
        "pattern": r"^\s*[0-9]+\s*$",
        "default": str(MAX_PIXELS_RANGE[1]),
        "description": f"An integer from {MAX_PIXELS_RANGE[0]:,} to {MAX_PIXELS_RANGE[1]:,}: "
        "larger inputs are scaled down to at most this many pixels before processing.",
    },
    "background.color": {
        "type": "string",
        "pattern": r"^\s*#[0-9A-Fa-f]{6}\s*$",
        "description": "`#RRGGBB`: paint this opaque colour behind the result.",
    },
    "result.crop_to_foreground": {
        "type": "string",
        "pattern": _BOOL,
        "default": "false",
        "description": "Crop the result to the foreground's bounding box.",
    },
    "result.margin": {
        "type": "string",
        "pattern": _MARGIN,
        "default": "0px",
        "description": "1 to 4 lengths (`px` or `%`) in CSS order, each at most 10000px or "
        "100%; `%` is of the content's height for top/bottom and width for left/right.",
    },
    "result.target_size": {
        "type": "string",
        "pattern": r"^\s*[0-9]+\s+[0-9]+\s*$",
        "description": "`width height`: the result is exactly this size (at most 25,000,000 "
        "pixels), the content scaled to fit inside the margin.",
    },
    "result.vertical_alignment": {
        "type": "string",
        "pattern": _choice_pattern(VERTICAL_ALIGNMENTS),
        "default": "middle",
        "description": "Where the excess vertical space goes with `result.target_size`: "
        + ", ".join(VERTICAL_ALIGNMENTS)
        + ".",
    },
    "output.format": {
        "type": "string",
        "pattern": _choice_pattern(OUTPUT_FORMATS),
        "default": "auto",
        "description": "One of " + ", ".join(OUTPUT_FORMATS) + " (`auto`: PNG, or JPEG when "
        "`background.color` is set).",
    },
    "output.jpeg_quality": {
        "type": "string",
        "pattern": r"^\s*[0-9]+\s*$",
        "default": "75",
        "description": f"An integer from {JPEG_QUALITY_RANGE[0]} to {JPEG_QUALITY_RANGE[1]}.",
    },
}

_IMAGE_BASE64 = {
    "type": "string",
    "maxLength": PIXIAN_BASE64_MAX_CHARS,
    "description": "The image, base64-encoded (at most 1 MB of text); a `data:...;base64,` "
    "prefix is tolerated.",
}
_INPUT_NOTE = "Send exactly one of `image`, `image.base64` and `image.url`."


def _image_url() -> dict:
    return {
        "type": "string",
        "description": "An http(s) URL Cutout downloads (public addresses only, at most "
        f"{fetch.MAX_REDIRECTS} redirects, {settings.CUTOUT_URL_MAX_MB} MB and "
        f"{settings.CUTOUT_URL_TIMEOUT_S:g} s; codes 3001-3005).",
    }


def remove_background_request() -> dict:
    image_url = _image_url()
    return {
        "multipart/form-data": {
            "type": "object",
            "description": _INPUT_NOTE,
            "properties": {
                "image": {
                    "type": "string",
                    "format": "binary",
                    "description": "The image file: BMP, GIF, JPEG, PNG, TIFF, WebP or HEIC.",
                },
                "image.base64": _IMAGE_BASE64,
                "image.url": image_url,
                **OPTIONS,
            },
            # Exactly one input: each branch holds when its field is present (1001, 1002 otherwise).
            "oneOf": [
                {"required": ["image"]},
                {"required": ["image.base64"]},
                {"required": ["image.url"]},
            ],
        },
        "application/x-www-form-urlencoded": {
            "type": "object",
            "description": _INPUT_NOTE + " (`image` needs multipart).",
            "properties": {"image.base64": _IMAGE_BASE64, "image.url": image_url, **OPTIONS},
            "oneOf": [{"required": ["image.base64"]}, {"required": ["image.url"]}],
        },
    }


class RemoveBackgroundSchema(OpenApiViewExtension):
    target_class = "removal.api.pixian.views.RemoveBackgroundView"

    def view_replacement(self) -> type:
        @extend_schema_view(
            post=extend_schema(
                operation_id="remove_background",
                tags=["Pixian v2"],
                summary="Remove the background of an image",
                description="Pixian.AI's v2 endpoint, to the letter: the result image in the body "
                "and what happened in the `X-*` headers. Checks run in this order: credentials "
                "(401), rate and concurrency limits (429), the request and the image's header "
                "(400, 413), the balance (402; skipped for test calls), the work.",
                request=remove_background_request(),
                parameters=[
                    OpenApiParameter(
                        "Idempotency-Key",
                        # 1 to 255 printable ASCII characters, not all blank (else 1011).
                        {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[ -~]*[!-~][ -~]*$",
                        },
                        location=OpenApiParameter.HEADER,
                        description="Repeat a request with the same key within 24 hours to get "
                        "the same answer, never charged twice.",
                    ),
                    *RESULT_HEADERS,
                    # DRF's ?format= override: this view answers JSON or the image, whatever.
                    OpenApiParameter("format", exclude=True),
                ],
                responses={
                    (200, "image/png"): OpenApiResponse(
                        BINARY, description="The result: PNG (transparent, or Delta PNG)."
                    ),
                    (200, "image/jpeg"): OpenApiResponse(
                        BINARY, description="The result: JPEG (with `background.color`, or asked)."
                    ),
                    **error_responses("pixian", ERROR_BODY, _ALL_ERRORS),
                },
            )
        )
        class Described(self.target_class):
            pass

        return Described


ACCOUNT_BODY = {
    "type": "object",
    "required": ["creditPack", "state", "useBefore", "credits"],
    "properties": {
        "creditPack": {
            "type": "string",
            "description": "The most recently bought pack's name, or `none`.",
        },
        "state": {"type": "string", "enum": ["active", "dormant"]},
        "useBefore": {
            "type": "string",
            "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
            "description": "When the current pack lapses (UTC; the epoch when never bought).",
        },
        "credits": {"type": "number", "description": "Remaining credits; may be fractional."},
    },
    "example": {
        "creditPack": "none",
        "state": "dormant",
        "useBefore": "1970-01-01T00:00:00Z",
        "credits": 0,
    },
}


class AccountSchema(OpenApiViewExtension):
    target_class = "removal.api.pixian.views.AccountView"

    def view_replacement(self) -> type:
        @extend_schema_view(
            get=extend_schema(
                operation_id="account",
                tags=["Pixian v2"],
                summary="The account's credits",
                parameters=[
                    header(
                        "X-Request-Id",
                        "This request's id (in the logs too).",
                        [200, 401, 404, 405, 429, 500],
                    ),
                    header("Retry-After", "Seconds to wait before retrying.", [429], "^[0-9]+$"),
                    header("WWW-Authenticate", 'Always `Basic realm="Cutout"`.', [401]),
                ],
                responses={
                    200: OpenApiResponse(ACCOUNT_BODY),
                    **error_responses("pixian", ERROR_BODY, (401, 429, 500)),
                },
            )
        )
        class Described(self.target_class):
            pass

        return Described
