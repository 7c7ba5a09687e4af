"""remove.bg v1.0 as a wire format: its prefix, its routes and its error JSON.

Every path under `/v1.0/` answers remove.bg's errors, `{"errors": [{"title", "code",
"detail"}]}`, with remove.bg's string codes (`CODES`; a code not listed gets the one of its
status in `STATUS_CODES`). Authentication failures are 403, as on remove.bg.
"""

from django.urls import re_path

from removal import errors
from removal.api import formats
from removal.api.removebg import schema, views  # noqa: F401  (schema: the OpenAPI descriptions)
from removal.errors import RemovalError, check_codes, spec_for

# Neutral code -> remove.bg's code (spec/removebg-v1.md, "Errors").
CODES: dict[int, str] = {
    errors.NO_IMAGE: "missing_source",
    errors.SEVERAL_IMAGES: "multiple_sources",
    errors.BAD_BASE64: "failed_to_read_image",
    errors.EMPTY_IMAGE: "failed_to_read_image",
    errors.UNREADABLE_IMAGE: "failed_to_read_image",
    errors.UNSUPPORTED_FORMAT: "invalid_file_type",
    errors.FILE_TOO_LARGE: "file_too_large",
    errors.TOO_MANY_PIXELS: "resolution_too_high",
    errors.TOO_SMALL: "invalid_dimensions",
    errors.SIDE_TOO_LONG: "invalid_dimensions",
    errors.URL_SCHEME: "invalid_image_url",
    errors.URL_ADDRESS: "invalid_image_url",
    errors.URL_REDIRECTS: "failed_image_download",
    errors.URL_FAILED: "failed_image_download",
    errors.URL_TOO_LARGE: "file_too_large",
    errors.BAD_TEST: "invalid_test",
    errors.RBG_BAD_SIZE: "invalid_size",
    errors.RBG_BAD_FORMAT: "invalid_format",
    errors.RBG_BAD_CHANNELS: "invalid_channels",
    errors.RBG_BAD_CROP: "invalid_crop",
    errors.RBG_BAD_CROP_MARGIN: "invalid_crop_margin",
    errors.RBG_BAD_SCALE: "invalid_scale",
    errors.RBG_BAD_POSITION: "invalid_position",
    errors.RBG_BAD_ROI: "invalid_roi",
    errors.REGION_OUTSIDE: "roi_exceeds_bounds",
    errors.REGION_EMPTY: "roi_region_empty",
    errors.RBG_BAD_BG_COLOR: "invalid_bg_color",
    errors.RBG_SEVERAL_BACKGROUNDS: "multiple_bg_sources",
    errors.RBG_BAD_BG_IMAGE_FILE: "failed_to_read_bg_image",
    errors.BAD_BACKGROUND_IMAGE: "failed_to_read_bg_image",
    errors.BG_URL_SCHEME: "invalid_bg_image_url",
    errors.BG_URL_ADDRESS: "invalid_bg_image_url",
    errors.BG_URL_REDIRECTS: "failed_bg_download",
    errors.BG_URL_FAILED: "failed_bg_download",
    errors.BG_URL_TOO_LARGE: "failed_bg_download",
    errors.NO_FOREGROUND: "unknown_foreground",
    errors.RESULT_TOO_LARGE_FOR_FORMAT: "invalid_format",
    errors.UNPARSABLE_BODY: "invalid_request",
    errors.BAD_IDEMPOTENCY_KEY: "invalid_idempotency_key",
    errors.BODY_TOO_LARGE: "request_too_large",
    errors.NO_CREDENTIALS: "auth_failed",
    errors.BAD_CREDENTIALS: "auth_failed",
    errors.NOT_ENOUGH_CREDITS: "insufficient_credits",
    errors.CREDITS_LAPSED: "insufficient_credits",
    errors.RATE_LIMITED: "rate_limit_exceeded",
}
check_codes("removebg CODES", CODES)

# For codes without an entry above (other formats' codes, later additions).
STATUS_CODES = {
    400: "invalid_request",
    402: "insufficient_credits",
    403: "auth_failed",
    404: "not_found",
    405: "method_not_allowed",
    409: "request_in_progress",
    411: "length_required",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "idempotency_key_reused",
    429: "rate_limit_exceeded",
}

# remove.bg answers a missing or wrong key with 403.
STATUSES = {errors.NO_CREDENTIALS: 403, errors.BAD_CREDENTIALS: 403}


def code_for(code: int, status: int) -> str:
    """remove.bg's string code for a neutral code answered with `status`."""
    return CODES.get(code) or STATUS_CODES.get(status, "internal_error")


def title_for(code: int) -> str:
    """The short, fixed title: the neutral table's default message (`detail` says more)."""
    return spec_for(code).message.rstrip(".")


def render_error(
    error: RemovalError, status: int, context: formats.ErrorContext
) -> formats.ErrorAnswer:
    body = {
        "errors": [
            {
                "title": title_for(error.code),
                "code": code_for(error.code, status),
                "detail": error.message,
            }
        ]
    }
    return formats.ErrorAnswer(body)


FORMAT = formats.WireFormat(
    name="removebg",
    prefix="/v1.0/",
    render_error=render_error,
    # remove.bg's clients post without a trailing slash; one more is tolerated.
    routes=[
        re_path(r"^v1\.0/removebg/?$", views.RemoveBgView.as_view(), name="removebg_removebg"),
        re_path(r"^v1\.0/account/?$", views.AccountView.as_view(), name="removebg_account"),
        re_path(r"^v1\.0/improve/?$", views.ImproveView.as_view(), name="removebg_improve"),
    ],
    statuses=STATUSES,
)
