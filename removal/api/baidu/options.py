"""Baidu's segment fields (spec/baidu-segment.md) into the image input and `RemovalOptions`.

The rules are the shared ones (removal/inputs.py, removal/params.py); this module only names
Baidu's fields, its defaults and its bounds. Each bad value has its own neutral code, which
the format renders as Baidu's 216100 (bad value), 216101 (missing) or 2162xx (the image).
"""

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from removal import errors, inputs, params
from removal.engine import decode
from removal.engine.types import Rect, RemovalOptions
from removal.errors import RemovalError

IMAGE_MAX_CHARS = 10 * 1024 * 1024
URL_MAX_BYTES = 1024
RETURN_FORMS = ("rgba", "mask")
METHODS = ("auto", "control")
MIN_BOX_SIDE = 10
# return_form=mask is binary: the alpha thresholded where Pixian's users threshold it.
MASK_THRESHOLD = 128

INPUTS = inputs.InputFields(
    file=None, base64="image", url="url", base64_max_chars=None, selection="first_wins"
)
# 10 MB of base64 is 7.5 MB of image; a URL's image is held to the same size.
BOUNDS = decode.ImageBounds(
    min_side=128,
    max_side=3000,
    max_bytes=IMAGE_MAX_CHARS * 3 // 4,
    # MPO: how Pillow names a camera's JPEG that carries a second (preview) image.
    formats=frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP"}),
)


def select_image(fields: Mapping[str, Any]) -> inputs.ImageInput:
    """`image` (base64) or `url`, `image` winning when both are present."""
    text = fields.get("image")
    if isinstance(text, str) and len(text) > IMAGE_MAX_CHARS:
        raise RemovalError(
            errors.BAIDU_IMAGE_TOO_LARGE,
            f"image is {len(text):,} characters of base64; at most {IMAGE_MAX_CHARS:,}.",
        )
    image = inputs.select_input(fields, {}, INPUTS)
    if image.kind == "url":
        if not isinstance(fields.get("url"), str):
            raise RemovalError(errors.BAD_OPTION, "url must be a string.")
        if not image.url:
            raise RemovalError(errors.NO_IMAGE, "url is empty: send image or url.")
        if len(image.url.encode("utf-8")) > URL_MAX_BYTES:
            raise RemovalError(errors.BAIDU_URL_TOO_LONG)
    return image


def parse_segment_options(fields: Mapping[str, Any]) -> RemovalOptions:
    """return_form, refine_mask, method and position as RemovalOptions."""
    return_form, refine, method = "rgba", True, "auto"
    if (value := params.given(fields, "return_form")) is not None:
        return_form = params.parse_choice(
            value, "return_form", errors.BAD_RETURN_FORM, RETURN_FORMS
        )
    if (value := params.given(fields, "refine_mask")) is not None:
        refine = params.parse_bool(value, "refine_mask", errors.BAD_REFINE_MASK)
    if (value := params.given(fields, "method")) is not None:
        method = params.parse_choice(value, "method", errors.BAD_METHOD, METHODS)
    regions: tuple[Rect, ...] = ()
    if method == "control":
        value = params.given(fields, "position")
        if value is None:
            raise RemovalError(errors.NO_POSITION)
        regions = params.parse_box_list(
            value, "position", errors.BAD_POSITION, max_count=settings.CUTOUT_MAX_REGIONS
        )
    mask = return_form == "mask"
    return RemovalOptions(
        output_format="mask" if mask else "png",
        mask_threshold=MASK_THRESHOLD if mask else None,
        raw=not refine,
        regions=regions,
    )


def check_boxes(regions: tuple[Rect, ...], info: decode.ImageInfo) -> None:
    """Each box must cover at least 10 × 10 pixels of the (oriented) image."""
    width, height = info.oriented_size
    for number, rect in enumerate(regions, start=1):
        inside_w = min(rect.x2, width) - max(rect.x1, 0)
        inside_h = min(rect.y2, height) - max(rect.y1, 0)
        if inside_w < MIN_BOX_SIDE or inside_h < MIN_BOX_SIDE:
            raise RemovalError(
                errors.POSITION_TOO_SMALL,
                f"position box {number} covers less than {MIN_BOX_SIDE} x {MIN_BOX_SIDE} "
                f"pixels of the image, which is {width} x {height}.",
            )
