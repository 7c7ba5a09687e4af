"""The OpenAPI 3 description of the API (drf-spectacular), true to the wire format.

DRF cannot infer this API: requests are form fields with dotted names, successes are image
bytes with Pixian's `X-*` headers, and every failure is the error JSON. So the views are
described here, from the spec (spec/pixian-v2.md) and removal/params.py, through spectacular's
extension points, which leaves the views themselves free of schema code. Served at
`/api/schema/`, rendered at `/api/docs/` with assets from drf-spectacular-sidecar.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from removal.errors import ERRORS
from removal.params import (
    JPEG_QUALITY_RANGE,
    MAX_PIXELS_RANGE,
    OUTPUT_FORMATS,
    VERTICAL_ALIGNMENTS,
)


class BasicApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "removal.auth.BasicApiKeyAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "User name: the API id; password: the API secret.",
        }


class HeaderApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "removal.auth.HeaderApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "'API_ID:API_SECRET' (remove.bg's header; Pixian clients use Basic).",
        }


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
    "example": {
        "error": {"status": 400, "code": 1006, "message": "Failed to read the supplied image."}
    },
}


def _codes_for(status: int) -> str:
    codes = [
        f"`{code}` {spec.message}"
        for code, spec in ERRORS.items()
        if spec.status == status and code != 2000
    ]
    if status == 400:
        codes.append("`2001`-`2099` a bad option value (the message names the parameter)")
    return "Codes: " + "; ".join(codes) if codes else ""


_ERROR_STATUSES = {
    400: "The request is at fault: the message says how to fix it.",
    401: "Missing, malformed or wrong credentials.",
    402: "Not enough credits, or they have lapsed.",
    404: "No such endpoint.",
    405: "Method not allowed (the `Allow` header lists the allowed ones).",
    413: "The request body is larger than the upload limit.",
    415: "The request's content type is not accepted.",
    429: "Rate or concurrency limit reached: retry after `Retry-After` seconds.",
    500: "Cutout's fault: quote the `X-Request-Id` when reporting it; the client may retry.",
    502: "Reseller mode: the upstream service failed.",
    503: "Reseller mode: the upstream service is unavailable or out of credits.",
    504: "Reseller mode: the upstream service timed out.",
}


def error_responses(*statuses: int) -> dict:
    return {
        status: OpenApiResponse(
            ERROR_BODY, description=f"{_ERROR_STATUSES[status]} {_codes_for(status)}".strip()
        )
        for status in statuses
    }


def _header(
    name: str, description: str, statuses, pattern: str | None = None, required: bool = True
):
    schema = {"type": "string"} if pattern is None else {"type": "string", "pattern": pattern}
    return OpenApiParameter(
        name,
        schema,
        location=OpenApiParameter.HEADER,
        response=list(statuses),
        required=required,
        description=description,
    )


_ALL_ERRORS = (400, 401, 402, 404, 405, 413, 415, 429, 500, 502, 503, 504)
_CREDITS = r"^(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"
_SIZE = r"^[0-9]+ [0-9]+$"
_BOX = r"^[0-9]+ [0-9]+ [0-9]+ [0-9]+$"

RESULT_HEADERS = [
    _header(
        "X-Credits-Charged",
        "Credits charged for this call (0 for test calls), as a plain decimal.",
        [200],
        _CREDITS,
    ),
    _header(
        "X-Credits-Calculated",
        "Test calls only: what a production call would have charged.",
        [200],
        _CREDITS,
        required=False,
    ),
    _header(
        "X-Input-Orientation",
        "The EXIF orientation read and applied (1-8; 1 when there is none).",
        [200],
        "^[1-8]$",
    ),
    _header("X-Input-Size", "`width height` of the input, before size limits.", [200], _SIZE),
    _header("X-Result-Size", "`width height` of the result.", [200], _SIZE),
    _header(
        "X-Input-Foreground",
        "`top left width height` of the foreground in input coordinates (`0 0 0 0`: none).",
        [200],
        _BOX,
    ),
    _header(
        "X-Result-Foreground",
        "The same box in result coordinates.",
        [200],
        _BOX,
    ),
    _header(
        "Idempotent-Replayed",
        "`true` when this is the stored answer to an earlier request with the same "
        "`Idempotency-Key`.",
        [200, *_ALL_ERRORS],
        "^true$",
        required=False,
    ),
    _header("Retry-After", "Seconds to wait before retrying.", [429], "^[0-9]+$"),
    _header("Allow", "The methods this endpoint answers.", [405]),
    _header(
        "WWW-Authenticate",
        'Always `Basic realm="Cutout"` on a 401.',
        [401],
    ),
    _header(
        "X-Request-Id",
        "This request's id (in the logs too); quote it when reporting a problem.",
        [200, *_ALL_ERRORS],
    ),
]

# Values arrive as form strings; empty or blank counts as not given (the default applies).
_BOOL = r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?\s*$"
_LENGTH = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([Pp][Xx]|%)"
_MARGIN = rf"^\s*({_LENGTH}|0)(\s+({_LENGTH}|0)){{0,3}}\s*$"


def _choice_pattern(choices) -> str:
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
    "maxLength": 1024 * 1024,
    "description": "The image, base64-encoded (at most 1 MB of text); a `data:...;base64,` "
    "prefix is tolerated.",
}
_IMAGE_URL = {
    "type": "string",
    "description": "An http(s) URL Cutout downloads (public addresses only, at most 3 "
    "redirects, 20 MB and 20 s; codes 3001-3005).",
}
_INPUT_NOTE = "Send exactly one of `image`, `image.base64` and `image.url`."

REMOVE_BACKGROUND_REQUEST = {
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
            "image.url": _IMAGE_URL,
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
        "properties": {"image.base64": _IMAGE_BASE64, "image.url": _IMAGE_URL, **OPTIONS},
        "oneOf": [{"required": ["image.base64"]}, {"required": ["image.url"]}],
    },
}

_BINARY = {"type": "string", "format": "binary"}
_RESULT = (
    "The result image: PNG (transparent, or Delta PNG with `output.format=delta_png`), or JPEG "
    "(with `background.color`, or `output.format=jpeg`)."
)


class RemoveBackgroundSchema(OpenApiViewExtension):
    target_class = "removal.api.pixian.RemoveBackgroundView"

    def view_replacement(self):
        @extend_schema_view(
            post=extend_schema(
                operation_id="remove_background",
                tags=["Pixian v2"],
                summary="Remove the background of an image",
                description="Pixian.AI's v2 endpoint, to the letter: the result image in the body "
                "and what happened in the `X-*` headers. Checks run in this order: credentials "
                "(401), rate and concurrency limits (429), the request and the image's header "
                "(400, 413), the balance (402; skipped for test calls), the work.",
                request=REMOVE_BACKGROUND_REQUEST,
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
                        _BINARY, description="The result: PNG (transparent, or Delta PNG)."
                    ),
                    (200, "image/jpeg"): OpenApiResponse(
                        _BINARY, description="The result: JPEG (with `background.color`, or asked)."
                    ),
                    **error_responses(*_ALL_ERRORS),
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
    target_class = "billing.views.AccountView"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                operation_id="account",
                tags=["Pixian v2"],
                summary="The account's credits",
                parameters=[
                    _header(
                        "X-Request-Id",
                        "This request's id (in the logs too).",
                        [200, 401, 404, 405, 429, 500],
                    ),
                    _header("Retry-After", "Seconds to wait before retrying.", [429], "^[0-9]+$"),
                    _header("WWW-Authenticate", 'Always `Basic realm="Cutout"`.', [401]),
                ],
                responses={200: OpenApiResponse(ACCOUNT_BODY), **error_responses(401, 429, 500)},
            )
        )
        class Described(self.target_class):
            pass

        return Described


# The public APIs this document describes; the website's own JSON views stay out of it.
# remove.bg's and Baidu's prefixes join when their views are described here.
PUBLIC_PREFIXES = ("/api/v2/",)


def public_endpoints(endpoints: list) -> list:
    """Preprocessing hook: keep only the public API's endpoints."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(PUBLIC_PREFIXES)]


def canonical_paths(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: the paths as Pixian's clients spell them. The URL pattern also
    takes a trailing slash, which spectacular would otherwise print."""
    result["paths"] = {
        (path.rstrip("/") if path.startswith("/api/v2/") else path): item
        for path, item in result["paths"].items()
    }
    return result
