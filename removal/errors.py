"""Cutout's neutral error codes (no Django here: the engine raises these too).

The table below is the only place where a code gets its HTTP status and default
message. Each wire format (Pixian, remove.bg, Baidu) renders a `RemovalError`
through its own table in `removal/api/errors.py`. Never reuse a number.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    message: str


ERRORS: dict[int, ErrorSpec] = {
    1001: ErrorSpec(400, "No image given: send one of image, image.base64 or image.url."),
    1002: ErrorSpec(400, "Send only one of image, image.base64 and image.url."),
    1003: ErrorSpec(400, "image.base64 is not valid base64 or exceeds 1 MB."),
    1004: ErrorSpec(413, "The request body is larger than the upload limit."),
    1005: ErrorSpec(400, "The supplied image is empty."),
    1006: ErrorSpec(400, "Failed to read the supplied image."),
    1007: ErrorSpec(400, "Unsupported image format: use BMP, GIF, JPEG, PNG, TIFF, WebP or HEIC."),
    1008: ErrorSpec(400, "The image has more than 32,000,000 pixels."),
    1009: ErrorSpec(400, "The image is too small to process."),
    1010: ErrorSpec(400, "The request body could not be parsed."),
    1011: ErrorSpec(400, "Idempotency-Key must be 1 to 255 printable ASCII characters."),
    # Reseller mode: the upstream refused the request for a cause with no code of ours; the
    # upstream's own message replaces this one (removal/upstream.py).
    1099: ErrorSpec(400, "The upstream service refused the request."),
    # 2001-2099: one code per option; see removal/params.py for which is which.
    2000: ErrorSpec(400, "Invalid parameter value."),
    2001: ErrorSpec(400, "test must be true or false (or 1 or 0)."),
    2002: ErrorSpec(400, "max_pixels must be an integer from 100 to 25,000,000."),
    2003: ErrorSpec(400, "background.color must be a colour #RRGGBB in hex."),
    2004: ErrorSpec(400, "result.crop_to_foreground must be true or false (or 1 or 0)."),
    2005: ErrorSpec(400, "result.margin must be 1 to 4 lengths like 10px or 5.5%."),
    2006: ErrorSpec(400, "result.target_size must be 'width height' in pixels."),
    2007: ErrorSpec(400, "result.vertical_alignment must be top, middle or bottom."),
    2008: ErrorSpec(400, "output.format must be auto, png, jpeg or delta_png."),
    2009: ErrorSpec(400, "output.jpeg_quality must be an integer from 1 to 100."),
    # Values that are wrong only for this image, raised by the engine (removal/engine/).
    2090: ErrorSpec(400, "A region (roi / control box) lies outside the image."),
    2091: ErrorSpec(400, "A region (roi / control box) is empty."),
    2092: ErrorSpec(400, "Failed to read the background image."),
    3001: ErrorSpec(400, "image.url: only http and https URLs are allowed."),
    3002: ErrorSpec(
        400, "image.url: the host resolves to a private, loopback or reserved address."
    ),
    3003: ErrorSpec(400, "image.url: too many redirects."),
    3004: ErrorSpec(400, "image.url: the download failed or timed out."),
    3005: ErrorSpec(400, "image.url: the download is too large."),
    4001: ErrorSpec(401, "Missing or malformed credentials."),
    4002: ErrorSpec(401, "Unknown or revoked API id, or wrong secret."),
    4020: ErrorSpec(402, "Not enough credits."),
    4021: ErrorSpec(402, "Your credits have lapsed (useBefore has passed)."),
    4030: ErrorSpec(403, "You may not do this."),
    4040: ErrorSpec(404, "Not found."),
    4050: ErrorSpec(405, "Method not allowed."),
    4090: ErrorSpec(409, "A request with this Idempotency-Key is still in progress; retry later."),
    4110: ErrorSpec(
        411, "Send the body with a Content-Length header: this server cannot read it chunked."
    ),
    4150: ErrorSpec(415, "Unsupported content type."),
    4290: ErrorSpec(429, "Rate or concurrency limit reached; retry later."),
    5000: ErrorSpec(500, "Internal error."),
    5020: ErrorSpec(502, "The upstream service failed."),
    5030: ErrorSpec(503, "The upstream service is unavailable."),
    5040: ErrorSpec(504, "The upstream service timed out."),
}


def spec_for(code: int) -> ErrorSpec:
    if code in ERRORS:
        return ERRORS[code]
    if 2001 <= code <= 2099:
        return ERRORS[2000]
    raise KeyError(f"unknown error code {code}")


class RemovalError(Exception):
    """A failure with a neutral code; `message` is for a human and names what to fix.

    `retry_after` (seconds) is sent as `Retry-After` where the status allows a retry.
    """

    def __init__(self, code: int, message: str | None = None, *, retry_after: int | None = None):
        self.code = code
        self.status = spec_for(code).status
        self.message = message or spec_for(code).message
        self.retry_after = retry_after
        super().__init__(f"{code}: {self.message}")
