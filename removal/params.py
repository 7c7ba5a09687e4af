"""The rules for option values, shared by every wire format (one place for each rule).

Each wire format's option parser (`removal/api/<format>/`) calls these primitives
(`parse_bool`, `parse_int`, `parse_choice`, `parse_color`, `parse_lengths`, `parse_margin`,
`parse_size`, `parse_box_list`, `check_margin_fits`) with its own parameter names and the
neutral error codes of `removal/errors.py`, so each format keeps its names and codes while
sharing the rules. The image inputs are `removal/inputs.py`'s.

Values arrive as form strings, or as JSON scalars and lists (remove.bg and Baidu accept JSON);
both are handled. A value that is empty or only whitespace counts as not given (web forms and
some clients send every field), so the default applies. Unknown fields are ignored.
"""

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from PIL import ImageColor

from removal.engine.types import Length, Margin, Rect
from removal.errors import RemovalError

# A result of target_size is allocated in full, so its area is capped like max_pixels, and its
# shape like an input's (removal/engine/decode.py MAX_ASPECT): loops over a result's outline
# (the test watermark's lattice) grow with the ratio of its sides.
TARGET_SIZE_MAX_PIXELS = 25_000_000
TARGET_SIZE_MAX_ASPECT = 1000
# Each box of a box list runs the model once; one smaller than this has no subject to find.
BOX_MIN_SIDE = 10
# Margins grow the result; these caps keep a request from asking for a gigapixel canvas.
MARGIN_MAX_PX = 10_000
MARGIN_MAX_PERCENT = 100

_UNSIGNED_INT = re.compile(r"[0-9]+")
_LENGTH = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(px|%)?", re.IGNORECASE)


def shown(value: Any) -> str:
    """The received value, quoted and shortened, for an error message."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text[:40] + "…" if len(text) > 40 else text)


def _bad(code: int, name: str, accepted: str, value: Any) -> RemovalError:
    return RemovalError(code, f"{name} must be {accepted}; got {shown(value)}.")


def given(fields: Mapping[str, Any], name: str) -> Any:
    """The value of `name`, or None when it is absent, empty or only whitespace."""
    value = fields.get(name)
    return value if is_given(value) else None


def is_given(value: Any) -> bool:
    """False for a missing value and for an empty or whitespace-only string."""
    if value is None:
        return False
    return not (isinstance(value, str) and not value.strip())


# --- primitives --------------------------------------------------------------------------------


def parse_bool(value: Any, name: str, code: int) -> bool:
    """`true`/`false` in any case, `1`/`0` (or JSON true/false/1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    raise _bad(code, name, "true or false (or 1 or 0)", value)


def parse_int(value: Any, name: str, code: int, low: int, high: int) -> int:
    """A decimal integer in [low, high]: digits only (no sign, exponent or '_' separators)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _UNSIGNED_INT.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise _bad(code, name, f"an integer from {low:,} to {high:,}", value)
    return number


def parse_choice(value: Any, name: str, code: int, choices: Iterable[str]) -> str:
    """One of `choices` (compared without regard to case); returns the canonical spelling."""
    choices = tuple(choices)
    if isinstance(value, str):
        text = value.strip().lower()
        for choice in choices:
            if text == choice.lower():
                return choice
    raise _bad(code, name, "one of " + ", ".join(choices), value)


def parse_color(
    value: Any,
    name: str,
    code: int,
    *,
    require_hash: bool = True,
    digits: Iterable[int] = (6,),
    names: bool = False,
) -> tuple[int, int, int, int]:
    """A hex colour as RGBA (alpha 255 unless the form carries one).

    Pixian: `#RRGGBB`, the `#` required (the defaults). remove.bg: `require_hash=False`,
    `digits=(3, 4, 6, 8)`, `names=True` for CSS colour names.
    """
    digits = tuple(digits)
    text = value.strip() if isinstance(value, str) else ""
    if names and text.lower() in ImageColor.colormap:
        r, g, b = ImageColor.getrgb(text.lower())[:3]
        return r, g, b, 255
    hex_part = text[1:] if text.startswith("#") else (None if require_hash else text)
    if hex_part is not None and len(hex_part) in digits and re.fullmatch(r"[0-9a-fA-F]+", hex_part):
        if len(hex_part) in (3, 4):
            hex_part = "".join(c * 2 for c in hex_part)
        channels = [int(hex_part[i : i + 2], 16) for i in range(0, len(hex_part), 2)]
        return (*channels[:3], channels[3] if len(channels) == 4 else 255)
    shapes = ", ".join({3: "RGB", 4: "RGBA", 6: "RRGGBB", 8: "RRGGBBAA"}[n] for n in digits)
    accepted = f"a colour #{shapes} in hex" if require_hash else f"a hex colour {shapes}"
    accepted += " (the # is required)" if require_hash else " (with or without #)"
    accepted += " or a CSS colour name" if names else ""
    raise _bad(code, name, accepted, value)


def parse_lengths(
    value: Any,
    name: str,
    code: int,
    *,
    counts: Iterable[int] = (1, 2, 3, 4),
    max_px: float = MARGIN_MAX_PX,
    max_percent: float = MARGIN_MAX_PERCENT,
    unitless: Literal["zero", "px", "never"] = "zero",
) -> list[Length]:
    """Space-separated lengths like `10px 5.5%`; `unitless="zero"` allows a bare `0`,
    `"px"` reads any bare number as pixels (remove.bg)."""
    parts = value.split() if isinstance(value, str) else []
    counts = tuple(counts)
    lengths: list[Length] = []
    for part in parts:
        match = _LENGTH.fullmatch(part)
        if match is None:
            break
        number, unit = float(match.group(1)), (match.group(2) or "").lower()
        if not unit:
            if unitless == "px" or (unitless == "zero" and number == 0):
                unit = "px"
            else:
                break
        if number > (max_px if unit == "px" else max_percent):
            break
        lengths.append(Length(number, unit))
    if not parts or len(lengths) != len(parts) or len(parts) not in counts:
        count_text = " to ".join(str(n) for n in (counts[0], counts[-1]))
        if len(counts) != counts[-1] - counts[0] + 1:
            count_text = ", ".join(map(str, counts[:-1])) + f" or {counts[-1]}"
        raise _bad(
            code,
            name,
            f"{count_text} space-separated lengths like 10px or 5.5%, each at most "
            f"{max_px:g}px or {max_percent:g}%",
            value,
        )
    return lengths


def margin_from_lengths(lengths: list[Length]) -> Margin:
    """CSS's 1-4 value order: all; top/bottom left/right; top left/right bottom; t r b l."""
    if len(lengths) == 1:
        top = right = bottom = left = lengths[0]
    elif len(lengths) == 2:
        (top, right), (bottom, left) = lengths, lengths
    elif len(lengths) == 3:
        top, right, bottom = lengths
        left = right
    else:
        top, right, bottom, left = lengths
    return Margin(top=top, right=right, bottom=bottom, left=left)


def parse_margin(value: Any, name: str, code: int, **length_rules: Any) -> Margin:
    return margin_from_lengths(parse_lengths(value, name, code, **length_rules))


def parse_size(
    value: Any,
    name: str,
    code: int,
    *,
    max_pixels: int = TARGET_SIZE_MAX_PIXELS,
    max_aspect: int = TARGET_SIZE_MAX_ASPECT,
) -> tuple[int, int]:
    """`w h` in whole pixels, each at least 1, w × h at most `max_pixels`, the longer side at
    most `max_aspect` times the shorter."""
    parts = value.split() if isinstance(value, str) else []
    if len(parts) == 2 and all(_UNSIGNED_INT.fullmatch(p) for p in parts):
        width, height = int(parts[0]), int(parts[1])
        if (
            width >= 1
            and height >= 1
            and width * height <= max_pixels
            and max(width, height) <= max_aspect * min(width, height)
        ):
            return width, height
    raise _bad(
        code,
        name,
        f"'width height' in whole pixels (like '1920 1080'), at most {max_pixels:,} pixels, "
        f"neither side over {max_aspect} times the other",
        value,
    )


def _box_corners(box: Any) -> tuple[float, float, float, float] | None:
    if not (isinstance(box, list) and len(box) == 2):
        return None
    if not all(isinstance(p, list) and len(p) == 2 for p in box):
        return None
    corners = [c for point in box for c in point]
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in corners):
        return None
    x1, y1, x2, y2 = (float(c) for c in corners)
    # JSON allows NaN and Infinity (and 1e400 is infinite): neither is a pixel.
    if not all(math.isfinite(c) for c in (x1, y1, x2, y2)):
        return None
    if min(x1, y1) < 0 or x2 - x1 < BOX_MIN_SIDE or y2 - y1 < BOX_MIN_SIDE:
        return None
    return x1, y1, x2, y2


def parse_box_list(value: Any, name: str, code: int, *, max_count: int) -> tuple[Rect, ...]:
    """Baidu's `[[[x1, y1], [x2, y2]], …]` (a JSON string or a list): top-left and
    bottom-right corners in pixels, 1 to `max_count` boxes (settings.CUTOUT_MAX_REGIONS: each
    runs the model once), each at least BOX_MIN_SIDE pixels each way."""
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            data = None
    boxes = data if isinstance(data, list) else []
    rects: list[Rect] = []
    for box in boxes[: max_count + 1]:
        corners = _box_corners(box)
        if corners is None:
            break
        rects.append(Rect(*corners))
    else:
        if 1 <= len(rects) <= max_count:
            return tuple(rects)
    raise _bad(
        code,
        name,
        f"a list of 1 to {max_count} boxes [[[x1, y1], [x2, y2]], …] in pixels, each at least "
        f"{BOX_MIN_SIDE} x {BOX_MIN_SIDE} (x2 - x1 >= {BOX_MIN_SIDE}, y2 - y1 >= {BOX_MIN_SIDE})",
        value,
    )


def check_margin_fits(margin: Margin, size: tuple[int, int], name: str, code: int) -> None:
    """With a target size the margin is inset (percentages of the target's own height for
    top/bottom and width for left/right): it must leave at least one pixel each way."""

    def used(a: Length, b: Length, extent: int) -> float:
        return sum(x.value if x.unit == "px" else x.value * extent / 100 for x in (a, b))

    width, height = size
    if (
        used(margin.left, margin.right, width) >= width
        or used(margin.top, margin.bottom, height) >= height
    ):
        raise RemovalError(
            code,
            f"{name} leaves no room for the image inside result.target_size "
            f"{width} {height}: make the margin smaller or the target larger.",
        )
