"""Cutout's neutral error codes (no Django here: the engine raises these too).

Each code is defined once below, as a named constant, with the status it has unless a wire
format says otherwise and the message a human reads when the raiser gives none. Wire formats
(`removal/api/`) render a `RemovalError` through their own tables, which are checked against
this one when they are imported. Never reuse a number; an unknown number raises at once.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    message: str


ERRORS: dict[int, ErrorSpec] = {}


def define(code: int, status: int, message: str) -> int:
    """Add one row to the table and return its number (for the named constant)."""
    if code in ERRORS:
        raise ValueError(f"error code {code} is defined twice")
    ERRORS[code] = ErrorSpec(status, message)
    return code


# 1xxx: the request or its image.
NO_IMAGE = define(1001, 400, "No image given: send one of image, image.base64 or image.url.")
SEVERAL_IMAGES = define(1002, 400, "Send only one of image, image.base64 and image.url.")
BAD_BASE64 = define(1003, 400, "image.base64 is not valid base64 or exceeds 1 MB.")
BODY_TOO_LARGE = define(1004, 413, "The request body is larger than the upload limit.")
EMPTY_IMAGE = define(1005, 400, "The supplied image is empty.")
UNREADABLE_IMAGE = define(1006, 400, "Failed to read the supplied image.")
UNSUPPORTED_FORMAT = define(
    1007, 400, "Unsupported image format: use BMP, GIF, JPEG, PNG, TIFF, WebP or HEIC."
)
TOO_MANY_PIXELS = define(1008, 400, "The image has more than 32,000,000 pixels.")
TOO_SMALL = define(1009, 400, "The image is too small to process.")
UNPARSABLE_BODY = define(1010, 400, "The request body could not be parsed.")
ASPECT_TOO_EXTREME = define(1012, 400, "The image's sides differ by more than 1000:1.")
# 1030-1039: Baidu's segment endpoint (removal/api/baidu/).
BAIDU_IMAGE_TOO_LARGE = define(1030, 400, "image is longer than 10 MB of base64 text.")
BAIDU_URL_TOO_LONG = define(1031, 400, "url is longer than 1024 bytes.")
SIDE_TOO_LONG = define(1013, 400, "A side of the image is longer than this API accepts.")
FILE_TOO_LARGE = define(1014, 400, "The image file is larger than this API accepts.")
# 1015-1018: the decoding budget (removal/engine/budget.py), counted before the codec runs.
TOO_MANY_SCANS = define(1015, 400, "The JPEG has more progressive scans than are decoded.")
TOO_MANY_FRAMES = define(1016, 400, "The image has more frames (pages) than are read.")
TOO_MANY_STRIPS = define(1017, 400, "The TIFF has more strips or tiles than are read.")
DECODED_TOO_LARGE = define(1018, 400, "The decoded image would be larger than is allowed.")
TRYOUT_NEEDS_FILE = define(
    1040, 400, "A try-out takes an image file from your device; sign up to send URLs."
)
BAD_IDEMPOTENCY_KEY = define(
    1011, 400, "Idempotency-Key must be 1 to 255 printable ASCII characters."
)
# Reseller mode: the upstream refused the request for a cause with no code of ours; the
# upstream's own message replaces this one (removal/upstream/).
UPSTREAM_REFUSED = define(1099, 400, "The upstream service refused the request.")

# 2001-2089: one code per option (the wire formats' option parsers say which is which).
BAD_OPTION = define(2000, 400, "Invalid parameter value.")
BAD_TEST = define(2001, 400, "test must be true or false (or 1 or 0).")
BAD_MAX_PIXELS = define(2002, 400, "max_pixels must be an integer from 100 to 25,000,000.")
BAD_BACKGROUND_COLOR = define(2003, 400, "background.color must be a colour #RRGGBB in hex.")
BAD_CROP_TO_FOREGROUND = define(
    2004, 400, "result.crop_to_foreground must be true or false (or 1 or 0)."
)
BAD_MARGIN = define(2005, 400, "result.margin must be 1 to 4 lengths like 10px or 5.5%.")
BAD_TARGET_SIZE = define(2006, 400, "result.target_size must be 'width height' in pixels.")
BAD_VERTICAL_ALIGNMENT = define(
    2007, 400, "result.vertical_alignment must be top, middle or bottom."
)
BAD_OUTPUT_FORMAT = define(2008, 400, "output.format must be auto, png, jpeg or delta_png.")
BAD_JPEG_QUALITY = define(2009, 400, "output.jpeg_quality must be an integer from 1 to 100.")
# 2010-2029: remove.bg's options (removal/api/removebg/options.py).
RBG_BAD_SIZE = define(2010, 400, "size must be preview, full, 50MP or auto.")
RBG_BAD_FORMAT = define(2011, 400, "format must be auto, png, jpg, webp or zip.")
RBG_BAD_CHANNELS = define(2012, 400, "channels must be rgba or alpha.")
RBG_BAD_CROP = define(2013, 400, "crop must be true or false.")
RBG_BAD_CROP_MARGIN = define(2014, 400, "crop_margin must be 1, 2 or 4 lengths in px or %.")
RBG_BAD_SCALE = define(2015, 400, "scale must be original or a percentage from 10% to 100%.")
RBG_BAD_POSITION = define(2016, 400, "position must be original, center or 1-2 percentages.")
RBG_BAD_ROI = define(2017, 400, "roi must be four lengths 'x1 y1 x2 y2' in px or %.")
RBG_BAD_BG_COLOR = define(2018, 400, "bg_color must be a hex colour or a CSS colour name.")
RBG_SEVERAL_BACKGROUNDS = define(
    2019, 400, "Send at most one of bg_color, bg_image_url and bg_image_file."
)
RBG_BAD_BG_IMAGE_FILE = define(2020, 400, "bg_image_file must be an uploaded file.")
# 2040-2049: Baidu's segment options (removal/api/baidu/options.py).
BAD_RETURN_FORM = define(2040, 400, "return_form must be rgba or mask.")
BAD_REFINE_MASK = define(2041, 400, "refine_mask must be true or false.")
BAD_METHOD = define(2042, 400, "method must be auto or control.")
BAD_POSITION = define(2043, 400, "position must be a list of boxes [[[x1, y1], [x2, y2]], ...].")
NO_POSITION = define(2044, 400, "method=control needs position, a list of boxes.")
POSITION_TOO_SMALL = define(
    2045, 400, "Each position box must cover at least 10 x 10 pixels inside the image."
)
# 2090-2099: values that are wrong only for this image, raised by the engine.
REGION_OUTSIDE = define(2090, 400, "A region (roi / control box) lies outside the image.")
REGION_EMPTY = define(2091, 400, "A region (roi / control box) is empty.")
BAD_BACKGROUND_IMAGE = define(2092, 400, "Failed to read the background image.")
NO_FOREGROUND = define(2093, 400, "No foreground could be found in the image.")
RESULT_TOO_LARGE_FOR_FORMAT = define(
    2094, 400, "The result is too large for the requested format (WebP: 16383 px per side)."
)

# 3001-3005: fetching image.url (removal/fetch.py; other URL fields pass their own codes).
URL_SCHEME = define(3001, 400, "image.url: only http and https URLs are allowed.")
URL_ADDRESS = define(
    3002, 400, "image.url: the host resolves to a private, loopback or reserved address."
)
URL_REDIRECTS = define(3003, 400, "image.url: too many redirects.")
URL_FAILED = define(3004, 400, "image.url: the download failed or timed out.")
URL_TOO_LARGE = define(3005, 400, "image.url: the download is too large.")

# 3011-3015: fetching remove.bg's bg_image_url (its own codes, removal/api/removebg/options.py).
BG_URL_SCHEME = define(3011, 400, "bg_image_url: only http and https URLs are allowed.")
BG_URL_ADDRESS = define(
    3012, 400, "bg_image_url: the host resolves to a private, loopback or reserved address."
)
BG_URL_REDIRECTS = define(3013, 400, "bg_image_url: too many redirects.")
BG_URL_FAILED = define(3014, 400, "bg_image_url: the download failed or timed out.")
BG_URL_TOO_LARGE = define(3015, 400, "bg_image_url: the download is too large.")

# 4xxx: credentials, credits, limits and HTTP-level refusals.
NO_CREDENTIALS = define(4001, 401, "Missing or malformed credentials.")
BAD_CREDENTIALS = define(4002, 401, "Unknown or revoked API id, or wrong secret.")
# 4003-4009: Baidu's access tokens (removal/tokens.py, removal/api/baidu/).
BAD_ACCESS_TOKEN = define(4003, 401, "Access token invalid or no longer valid.")
ACCESS_TOKEN_EXPIRED = define(4004, 401, "Access token expired.")
NO_ACCESS_TOKEN = define(4005, 401, "Missing access_token.")
UNKNOWN_CLIENT = define(4006, 401, "unknown client id")
UNSUPPORTED_GRANT_TYPE = define(
    4007, 400, "The authorization grant type is not supported: use client_credentials."
)
NOT_ENOUGH_CREDITS = define(4020, 402, "Not enough credits.")
CREDITS_LAPSED = define(4021, 402, "Your credits have lapsed (useBefore has passed).")
FORBIDDEN = define(4030, 403, "You may not do this.")
NOT_FOUND = define(4040, 404, "Not found.")
METHOD_NOT_ALLOWED = define(4050, 405, "Method not allowed.")
IDEMPOTENCY_IN_PROGRESS = define(
    4090, 409, "A request with this Idempotency-Key is still in progress; retry later."
)
LENGTH_REQUIRED = define(
    4110, 411, "Send the body with a Content-Length header: this server cannot read it chunked."
)
UNSUPPORTED_MEDIA_TYPE = define(4150, 415, "Unsupported content type.")
IDEMPOTENCY_KEY_REUSED = define(
    4220, 422, "This Idempotency-Key was sent before with a different request; use a new key."
)
TRYOUT_LIMIT = define(
    4060,
    429,
    "You have used today's free try-outs from this address. Sign up to go on: test mode is free.",
)
RATE_LIMITED = define(4290, 429, "Rate or concurrency limit reached; retry later.")
# Free work (test mode, try-outs) is capped site-wide and per account (removal/limits.py).
FREE_WORK_BUSY = define(
    4291, 429, "Too much free (test-mode) work is running on this site right now; retry later."
)
FREE_PIXELS_SPENT = define(
    4292, 429, "This account's free (test-mode) pixel budget for this minute is spent."
)

# 6001-6099: batches (batches/); an item's own failure keeps the code of its cause.
BATCH_BODY = define(
    6001,
    400,
    "A batch is a JSON object with items (a list), and optional options and webhook_url, "
    "or a multipart form with image files.",
)
BATCH_TOO_MANY_ITEMS = define(
    6002, 400, "Too many items: at most 1,000 per batch and 100 files per upload."
)
BATCH_EMPTY = define(6003, 400, "A batch needs at least one item.")
BATCH_TEST_TOO_MANY = define(6004, 400, "A test batch has more items than CUTOUT_BATCH_TEST_ITEMS.")
BATCH_ITEM_TEST = define(
    6005, 400, "test is set for the whole batch (in options), not for one item."
)
WEBHOOK_URL_BAD = define(6006, 400, "webhook_url must be an http or https URL.")
WEBHOOK_URL_PRIVATE = define(
    6007, 400, "webhook_url: the host resolves to a private, loopback or reserved address."
)
BATCH_STORAGE_FULL = define(
    6008, 429, "The account's stored batch results are at their cap; download and wait."
)
BATCH_NOT_OPEN = define(6009, 409, "This batch has started: items can no longer be added.")
BATCH_FINISHED = define(6010, 409, "This batch has finished.")
BATCH_NO_RESULT = define(6011, 404, "This item has no result: not done, failed or purged.")
BATCH_WORKER_LOST = define(6012, 500, "The item's worker stopped before it finished, too often.")

# 5xxx: Cutout's fault, or the upstream's.
INTERNAL = define(5000, 500, "Internal error.")
UPSTREAM_FAILED = define(5020, 502, "The upstream service failed.")
UPSTREAM_UNAVAILABLE = define(5030, 503, "The upstream service is unavailable.")
# The engine pool (removal/engine/pool.py) and the reverse proxy in front of gunicorn.
ENGINE_BUSY = define(5031, 503, "Every engine is busy; retry later.")
ENGINE_FAILED = define(5032, 503, "The engine failed on this request; retry later.")
SERVER_UNAVAILABLE = define(5033, 503, "The service is restarting or unavailable; retry later.")
UPSTREAM_TIMEOUT = define(5040, 504, "The upstream service timed out.")
ENGINE_TIMEOUT = define(5041, 504, "Processing this image took too long and was stopped.")
REQUEST_TIMEOUT = define(5042, 504, "The request took too long and was stopped.")


def spec_for(code: int) -> ErrorSpec:
    """The table's row; KeyError for a code that is not in it."""
    return ERRORS[code]


def check_codes(table_name: str, codes: object) -> None:
    """Refuse, at import, a wire format's table that names a code Cutout does not have."""
    unknown = sorted(set(codes) - set(ERRORS))  # type: ignore[call-overload]
    if unknown:
        raise ValueError(f"{table_name} names unknown error codes {unknown}")


class RemovalError(Exception):
    """A failure with a neutral code; `message` is for a human and names what to fix.

    `status` is the table's; a wire format may answer another (remove.bg 403 for credentials,
    Baidu's segment HTTP 200). `retry_after` (seconds) is sent as `Retry-After` where the
    status allows a retry.
    """

    def __init__(
        self, code: int, message: str | None = None, *, retry_after: int | None = None
    ) -> None:
        spec = spec_for(code)
        self.code = code
        self.status = spec.status
        self.message = message or spec.message
        self.retry_after = retry_after
        super().__init__(f"{code}: {self.message}")
