"""Pixian v2's options (spec/pixian-v2.md) into `RemovalOptions`.

The website and the CLI take the same fields, so they use this parser too. Each bad value
raises its own 2001-2009 code, naming the parameter and the accepted form.
"""

from collections.abc import Mapping
from typing import Any

from removal import errors, params
from removal.engine.types import RemovalOptions

MAX_PIXELS_RANGE = (100, 25_000_000)
JPEG_QUALITY_RANGE = (1, 100)
OUTPUT_FORMATS = ("auto", "png", "jpeg", "delta_png")
VERTICAL_ALIGNMENTS = ("top", "middle", "bottom")
# Every option field Pixian v2 takes: what reseller mode forwards upstream as sent, and what
# the website keeps with an upload.
FIELDS = (
    "test",
    "max_pixels",
    "background.color",
    "result.crop_to_foreground",
    "result.margin",
    "result.target_size",
    "result.vertical_alignment",
    "output.format",
    "output.jpeg_quality",
)


def given_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """The option fields a request gave, as text (what parse_pixian_options parses)."""
    given = ((name, params.given(fields, name)) for name in FIELDS)
    return {name: str(value) for name, value in given if value is not None}


def parse_pixian_options(fields: Mapping[str, Any]) -> RemovalOptions:
    """The Pixian fields of a form (or any mapping of strings) as RemovalOptions."""
    options: dict[str, Any] = {}
    if (value := params.given(fields, "test")) is not None:
        options["test"] = params.parse_bool(value, "test", errors.BAD_TEST)
    if (value := params.given(fields, "max_pixels")) is not None:
        options["max_pixels"] = params.parse_int(
            value, "max_pixels", errors.BAD_MAX_PIXELS, *MAX_PIXELS_RANGE
        )
    if (value := params.given(fields, "background.color")) is not None:
        color = params.parse_color(value, "background.color", errors.BAD_BACKGROUND_COLOR)
        options["background_color"] = color[:3]
    if (value := params.given(fields, "result.crop_to_foreground")) is not None:
        options["crop_to_foreground"] = params.parse_bool(
            value, "result.crop_to_foreground", errors.BAD_CROP_TO_FOREGROUND
        )
    if (value := params.given(fields, "result.margin")) is not None:
        options["margin"] = params.parse_margin(value, "result.margin", errors.BAD_MARGIN)
    if (value := params.given(fields, "result.target_size")) is not None:
        options["target_size"] = params.parse_size(
            value, "result.target_size", errors.BAD_TARGET_SIZE
        )
    if (value := params.given(fields, "result.vertical_alignment")) is not None:
        options["vertical_alignment"] = params.parse_choice(
            value, "result.vertical_alignment", errors.BAD_VERTICAL_ALIGNMENT, VERTICAL_ALIGNMENTS
        )
    if (value := params.given(fields, "output.format")) is not None:
        options["output_format"] = params.parse_choice(
            value, "output.format", errors.BAD_OUTPUT_FORMAT, OUTPUT_FORMATS
        )
    if (value := params.given(fields, "output.jpeg_quality")) is not None:
        options["jpeg_quality"] = params.parse_int(
            value, "output.jpeg_quality", errors.BAD_JPEG_QUALITY, *JPEG_QUALITY_RANGE
        )
    if "margin" in options and "target_size" in options:
        params.check_margin_fits(
            options["margin"], options["target_size"], "result.margin", errors.BAD_MARGIN
        )
    return RemovalOptions(**options)


def forwarded_fields(fields: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The request's Pixian option fields as sent (reseller mode sends them on unchanged);
    only fields `parse_pixian_options` has checked, so the upstream gets nothing unchecked."""
    return tuple(
        (name, str(value)) for name in FIELDS if (value := params.given(fields, name)) is not None
    )
