"""remove.bg's fields (spec/removebg-v1.md) into `RemovalOptions` and the product to charge.

Each bad value raises its own 2010-2020 code (rendered as remove.bg's `invalid_size`, …),
naming the field and the accepted form. `bg_image_url` is downloaded here, under the same
rules as the input (removal/fetch.py) but with its own codes (3011-3015), and the background
image's header is checked here too, so that a bad background is a 400 before any credit is
held. `type`, `type_level`, `add_shadow`, `shadow_type`, `shadow_opacity`, `shadow_method`
and `semitransparency` are accepted with any value and ignored (the README says so).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from billing import pricing
from removal import errors, fetch, params
from removal.engine import compose
from removal.engine.types import Margin, Rect, RemovalOptions
from removal.errors import RemovalError
from removal.inputs import InputFields

MAX_IMAGE_BYTES = 12 * 1024 * 1024
# 12 MB decoded is at most this much base64 text.
MAX_BASE64_CHARS = 4 * -(-MAX_IMAGE_BYTES // 3)
REMOVEBG_INPUTS = InputFields(
    file="image_file",
    base64="image_file_b64",
    url="image_url",
    base64_max_chars=MAX_BASE64_CHARS,
)

PREVIEW_PIXELS = 250_000
FULL_PIXELS = 25_000_000
# remove.bg's sizes and their legacy names -> (product, result pixel bound).
SIZES = {
    "preview": (pricing.PREVIEW, PREVIEW_PIXELS),
    "small": (pricing.PREVIEW, PREVIEW_PIXELS),
    "regular": (pricing.PREVIEW, PREVIEW_PIXELS),
    "full": (pricing.IMAGE, FULL_PIXELS),
    "50mp": (pricing.IMAGE, FULL_PIXELS),
    "auto": (pricing.IMAGE, FULL_PIXELS),
    "medium": (pricing.IMAGE, FULL_PIXELS),
    "hd": (pricing.IMAGE, FULL_PIXELS),
    "4k": (pricing.IMAGE, FULL_PIXELS),
}
FORMATS = {
    "auto": "auto",
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "webp": "webp",
    "zip": "zip",
}
CHANNELS = ("rgba", "alpha")
CROP_MARGIN_MAX_PX = 500
CROP_MARGIN_MAX_PERCENT = 50
SCALE_RANGE = (10, 100)

BG_URL_CODES = fetch.UrlCodes(
    scheme=errors.BG_URL_SCHEME,
    address=errors.BG_URL_ADDRESS,
    redirects=errors.BG_URL_REDIRECTS,
    failed=errors.BG_URL_FAILED,
    too_large=errors.BG_URL_TOO_LARGE,
    empty=errors.BAD_BACKGROUND_IMAGE,
    unreadable=errors.BAD_BACKGROUND_IMAGE,
    unsupported=errors.BAD_BACKGROUND_IMAGE,
)

_PERCENT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%\s*")


@dataclass(frozen=True)
class RemoveBgOptions:
    options: RemovalOptions
    product: str


def _percent(text: str, low: float, high: float) -> float | None:
    match = _PERCENT.fullmatch(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if low <= value <= high else None


def parse_size(value: Any) -> tuple[str, int]:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text not in SIZES:
        raise RemovalError(
            errors.RBG_BAD_SIZE,
            "size must be preview, full, 50MP or auto (or small, regular, medium, hd, 4k); "
            f"got {params.shown(value)}.",
        )
    return SIZES[text]


def parse_scale(value: Any) -> float | None:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text == "original":
        return None
    percent = _percent(text, *SCALE_RANGE)
    if percent is None:
        raise RemovalError(
            errors.RBG_BAD_SCALE,
            f"scale must be original or a percentage from 10% to 100%; got {params.shown(value)}.",
        )
    return percent / 100


def parse_position(value: Any) -> tuple[float, float] | None:
    """`original` (None), `center`, or one (both axes) or two (x, y) percentages."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text == "original":
        return None
    if text == "center":
        return 0.5, 0.5
    parts = [_percent(part, 0, 100) for part in text.split()]
    if parts and len(parts) <= 2 and None not in parts:
        x = parts[0] / 100  # type: ignore[operator]
        y = parts[-1] / 100  # type: ignore[operator]
        return x, y
    raise RemovalError(
        errors.RBG_BAD_POSITION,
        "position must be original, center, or one or two percentages from 0% to 100% "
        f"(horizontal, vertical); got {params.shown(value)}.",
    )


def parse_roi(value: Any) -> tuple[Rect, ...]:
    """`x1 y1 x2 y2`, all in px or all in %; the whole image (the default) is no region."""
    parts = value.split() if isinstance(value, str) else []
    lengths = []
    if len(parts) == 4:
        try:
            lengths = params.parse_lengths(
                value,
                "roi",
                errors.RBG_BAD_ROI,
                counts=(4,),
                max_px=1_000_000,
                max_percent=100,
                unitless="px",
            )
        except RemovalError:
            lengths = []
    units = {length.unit for length in lengths}
    if len(lengths) != 4 or len(units) != 1:
        raise RemovalError(
            errors.RBG_BAD_ROI,
            "roi must be four lengths 'x1 y1 x2 y2', all in px or all in % (like "
            f"'0% 0% 100% 100%'); got {params.shown(value)}.",
        )
    x1, y1, x2, y2 = (length.value for length in lengths)
    if units == {"%"}:
        if (x1, y1, x2, y2) == (0, 0, 100, 100):
            return ()
        return (Rect(x1 / 100, y1 / 100, x2 / 100, y2 / 100, relative=True),)
    return (Rect(x1, y1, x2, y2),)


def parse_crop_margin(value: Any) -> Margin:
    return params.parse_margin(
        value,
        "crop_margin",
        errors.RBG_BAD_CROP_MARGIN,
        counts=(1, 2, 4),
        max_px=CROP_MARGIN_MAX_PX,
        max_percent=CROP_MARGIN_MAX_PERCENT,
        unitless="px",
    )


def _background_file(files: Mapping[str, Any]) -> bytes:
    upload = files.get("bg_image_file")
    if upload is None or isinstance(upload, str):
        raise RemovalError(
            errors.RBG_BAD_BG_IMAGE_FILE, "bg_image_file must be sent as a file (multipart)."
        )
    upload.seek(0)
    return upload.read(MAX_IMAGE_BYTES + 1)


def _background_image(fields: Mapping[str, Any], files: Mapping[str, Any]) -> bytes | None:
    """The background image's bytes (bg_image_url downloaded), header checked; None if none."""
    url = params.given(fields, "bg_image_url")
    has_file = "bg_image_file" in files or params.given(fields, "bg_image_file") is not None
    given = [
        name
        for name, present in (
            ("bg_color", params.given(fields, "bg_color") is not None),
            ("bg_image_url", url is not None),
            ("bg_image_file", has_file),
        )
        if present
    ]
    if len(given) > 1:
        raise RemovalError(
            errors.RBG_SEVERAL_BACKGROUNDS,
            "Send at most one of bg_color, bg_image_url and bg_image_file; "
            f"got {', '.join(given)}.",
        )
    if url is not None:
        data = fetch.fetch_image_url(
            url.strip() if isinstance(url, str) else "",
            allow_loopback=settings.CUTOUT_ALLOW_LOOPBACK_URLS,
            field="bg_image_url",
            codes=BG_URL_CODES,
            max_bytes=MAX_IMAGE_BYTES,
        )
    elif has_file:
        data = _background_file(files)
        if len(data) > MAX_IMAGE_BYTES:
            raise RemovalError(
                errors.BAD_BACKGROUND_IMAGE,
                f"bg_image_file is larger than {MAX_IMAGE_BYTES:,} bytes.",
            )
    else:
        return None
    compose.probe_background(data)
    return data


def parse_removebg_options(fields: Mapping[str, Any], files: Mapping[str, Any]) -> RemoveBgOptions:
    """remove.bg's fields of a form or JSON body (strings or JSON scalars), and the files of a
    multipart body (`bg_image_file`), as options and the product to charge."""
    options: dict[str, Any] = {}
    size = params.given(fields, "size")
    product, max_pixels = parse_size(size) if size is not None else SIZES["preview"]
    options["max_pixels"] = options["max_result_pixels"] = max_pixels
    if (value := params.given(fields, "test")) is not None:
        options["test"] = params.parse_bool(value, "test", errors.BAD_TEST)
    output_format = "auto"
    if (value := params.given(fields, "format")) is not None:
        choice = params.parse_choice(value, "format", errors.RBG_BAD_FORMAT, FORMATS)
        output_format = FORMATS[choice]
    if (value := params.given(fields, "channels")) is not None:
        channels = params.parse_choice(value, "channels", errors.RBG_BAD_CHANNELS, CHANNELS)
        # The ZIP already carries the alpha; otherwise the mask replaces the image.
        if channels == "alpha" and output_format != "zip":
            output_format = "mask"
    options["output_format"] = output_format
    crop = False
    if (value := params.given(fields, "crop")) is not None:
        crop = options["crop_to_foreground"] = params.parse_bool(value, "crop", errors.RBG_BAD_CROP)
    if (value := params.given(fields, "crop_margin")) is not None:
        margin = parse_crop_margin(value)
        # As on remove.bg, the margin surrounds the cropped subject: without crop it is unused.
        if crop:
            options["margin"] = margin
    if (value := params.given(fields, "scale")) is not None:
        options["scale"] = parse_scale(value)
    if (value := params.given(fields, "position")) is not None:
        options["position"] = parse_position(value)
    if (value := params.given(fields, "roi")) is not None:
        options["regions"] = parse_roi(value)
    if (value := params.given(fields, "bg_color")) is not None:
        color = params.parse_color(
            value,
            "bg_color",
            errors.RBG_BAD_BG_COLOR,
            require_hash=False,
            digits=(3, 4, 6, 8),
            names=True,
        )
        # The engine paints opaque backgrounds: an alpha digit pair is accepted and unused.
        options["background_color"] = color[:3]
    options["background_image"] = _background_image(fields, files)
    return RemoveBgOptions(RemovalOptions(**options), product)
