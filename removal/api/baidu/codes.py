"""Baidu's numeric error codes: its messages, and which neutral code (removal/errors.py) each
stands for. Checked against the neutral table at import."""

from removal import errors
from removal.errors import RemovalError, check_codes

# Baidu's own codes and messages (its "错误码" table, as its servers spell them).
BAIDU_MESSAGES = {
    3: "Unsupported openapi method",
    6: "No permission to access data",
    17: "Open api daily request limit reached",
    18: "Open api qps request limit reached",
    19: "Open api total request limit reached",
    100: "Invalid parameter",
    110: "Access token invalid or no longer valid",
    111: "Access token expired",
    216100: "invalid param",
    216101: "not enough param",
    216200: "empty image",
    216201: "image format error",
    216202: "image size error",
    282000: "internal error",
    282111: "url download failed",
}
# Codes whose message adds Cutout's own detail (which field, what is accepted).
DETAILED = {216100, 216101, 216201, 216202, 282111}

BAIDU_CODES = {
    errors.NO_ACCESS_TOKEN: 100,
    errors.NO_CREDENTIALS: 110,
    errors.BAD_CREDENTIALS: 110,
    errors.BAD_ACCESS_TOKEN: 110,
    errors.ACCESS_TOKEN_EXPIRED: 111,
    errors.RATE_LIMITED: 18,
    errors.NOT_ENOUGH_CREDITS: 19,
    errors.CREDITS_LAPSED: 19,
    errors.NOT_FOUND: 3,
    errors.METHOD_NOT_ALLOWED: 3,
    errors.FORBIDDEN: 6,
    errors.NO_IMAGE: 216101,
    errors.NO_POSITION: 216101,
    errors.EMPTY_IMAGE: 216200,
    errors.BAD_BASE64: 216201,
    errors.UNREADABLE_IMAGE: 216201,
    errors.UNSUPPORTED_FORMAT: 216201,
    errors.BODY_TOO_LARGE: 216202,
    errors.BAIDU_IMAGE_TOO_LARGE: 216202,
    errors.TOO_MANY_PIXELS: 216202,
    errors.TOO_SMALL: 216202,
    errors.SIDE_TOO_LONG: 216202,
    errors.FILE_TOO_LARGE: 216202,
    errors.URL_TOO_LARGE: 216202,
    errors.URL_SCHEME: 282111,
    errors.URL_ADDRESS: 282111,
    errors.URL_REDIRECTS: 282111,
    errors.URL_FAILED: 282111,
    errors.INTERNAL: 282000,
    errors.UPSTREAM_REFUSED: 282000,
    errors.UPSTREAM_FAILED: 282000,
    errors.UPSTREAM_UNAVAILABLE: 282000,
    errors.UPSTREAM_TIMEOUT: 282000,
}
check_codes("baidu codes", BAIDU_CODES)


def baidu_code(error: RemovalError) -> int:
    """Baidu's number for a neutral error: the table's, else 216100 (a request at fault) or
    282000 (Cutout's fault)."""
    return BAIDU_CODES.get(error.code, 282000 if error.status >= 500 else 216100)
