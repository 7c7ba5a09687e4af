"""Reading a Pixian-compatible API's answers: a success's headers, error JSON, the account JSON
and `Retry-After`. Pure functions, no I/O: `client.py` does the talking and decides
what each answer means for the customer.
"""

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime

from PIL import Image, UnidentifiedImageError

from removal.engine.types import Box, RemovalResult

IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
_MESSAGE_LIMIT = 500
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
# Cutout's own on every answer: the ledger's figures and its request id.
NOT_PASSED_THROUGH = frozenset({"x-credits-charged", "x-credits-calculated", "x-request-id"})


@dataclass(frozen=True)
class UpstreamResult:
    """A successful removal: the image and the upstream's headers, parsed.

    Sizes and boxes are in the oriented input's pixels, boxes Pixian-ordered
    (top, left, width, height); a header the upstream left out reads as zeros (orientation 1).
    `tries` is how many requests it took.
    """

    body: bytes
    content_type: str
    credits_charged: Decimal
    credits_calculated: Decimal | None
    input_size: tuple[int, int]
    result_size: tuple[int, int]
    input_foreground: Box
    result_foreground: Box
    orientation: int
    tries: int
    headers: dict[str, str] = field(default_factory=dict)

    def passed_through(self) -> dict[str, str]:
        """The upstream's `X-*` headers a customer gets as sent, but for Cutout's own."""
        return {
            name: value
            for name, value in self.headers.items()
            if name.lower().startswith("x-") and name.lower() not in NOT_PASSED_THROUGH
        }


@dataclass(frozen=True)
class UpstreamAccount:
    """The upstream's `GET /api/v2/account`: what is left on the operator's own account."""

    credit_pack: str
    state: str
    use_before: datetime | None
    credits: Decimal


def plain_credits(amount: Decimal) -> str:
    """Credits as the wire writes them: the shortest plain decimal (`1`, `0.25`), no exponent."""
    text = format(amount.normalize(), "f")
    return "0" if text in {"-0", ""} else text


def to_removal_result(result: UpstreamResult) -> RemovalResult:
    """An upstream answer as the engine's result type, carrying the upstream's charge."""
    return RemovalResult(
        body=result.body,
        content_type=result.content_type,
        input_size=result.input_size,
        result_size=result.result_size,
        input_foreground=result.input_foreground,
        result_foreground=result.result_foreground,
        orientation=result.orientation,
        upstream_credits=plain_credits(result.credits_charged),
        headers=result.passed_through(),
    )


def parse_result(headers: Mapping[str, str], body: bytes, tries: int) -> UpstreamResult:
    """A `200`'s image and headers. Raises ValueError, saying why, when billing or the customer
    could not trust it: not a whole PNG or JPEG of the size `X-Result-Size` states, or no valid
    `X-Credits-Charged`."""
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    charged = _credits(headers.get("X-Credits-Charged"))
    if content_type not in IMAGE_TYPES:
        raise ValueError(f"content type {content_type or 'missing'!r}")
    if not _complete(body, content_type):
        raise ValueError(f"an incomplete {content_type} of {len(body)} bytes")
    if charged is None:
        raise ValueError(f"X-Credits-Charged is {headers.get('X-Credits-Charged')!r}")
    result_size = _size(headers.get("X-Result-Size"))
    actual = _dimensions(body)
    if result_size != (0, 0) and actual != result_size:
        raise ValueError(f"an image of {actual} pixels where X-Result-Size says {result_size}")
    return UpstreamResult(
        body=body,
        content_type=content_type,
        credits_charged=charged,
        credits_calculated=_credits(headers.get("X-Credits-Calculated")),
        input_size=_size(headers.get("X-Input-Size")),
        result_size=result_size,
        input_foreground=_box(headers.get("X-Input-Foreground")),
        result_foreground=_box(headers.get("X-Result-Foreground")),
        orientation=_orientation(headers.get("X-Input-Orientation")),
        tries=tries,
        headers={name.title(): value for name, value in headers.items()},
    )


def parse_account(body: bytes) -> UpstreamAccount:
    """`{"creditPack", "state", "useBefore", "credits"}`; raises ValueError when it is not."""
    try:
        doc = json.loads(body, parse_float=Decimal)
        credits = Decimal(str(doc["credits"]))
        use_before = doc.get("useBefore")
        if not credits.is_finite():
            raise ValueError(f"credits {credits}")
        return UpstreamAccount(
            credit_pack=str(doc.get("creditPack", "none")),
            state=str(doc.get("state", "")),
            use_before=_time(use_before) if use_before else None,
            credits=credits,
        )
    except (KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        raise ValueError(f"not Pixian's account JSON: {exc!r}") from None


def error_json(body: bytes) -> tuple[int, str] | None:
    """(code, message) from Pixian's error JSON, or None when the body is something else."""
    try:
        error = json.loads(body)["error"]
        code = int(error["code"])
    except (ValueError, KeyError, TypeError):
        return None
    message = error.get("message")
    message = message.strip()[:_MESSAGE_LIMIT] if isinstance(message, str) else ""
    return code, message


def retry_after(value: str | None) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP date), or None when absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _complete(body: bytes, content_type: str) -> bool:
    # Without Content-Length a cut connection looks like a short body; images have end marks.
    if content_type == "image/png":
        return body.startswith(_PNG_START) and body.endswith(_PNG_END)
    return body.startswith(b"\xff\xd8") and b"\xff\xd9" in body[-64:]


def _dimensions(body: bytes) -> tuple[int, int] | None:
    """(width, height) from the image's header, None when it cannot be read."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _credits(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _ints(value: str | None, count: int) -> list[int] | None:
    try:
        numbers = [int(part) for part in (value or "").split()]
    except ValueError:
        return None
    return numbers if len(numbers) == count and min(numbers) >= 0 else None


def _size(value: str | None) -> tuple[int, int]:
    numbers = _ints(value, 2)
    return (numbers[0], numbers[1]) if numbers else (0, 0)


def _box(value: str | None) -> Box:
    numbers = _ints(value, 4)
    return Box(*numbers) if numbers else Box()


def _orientation(value: str | None) -> int:
    numbers = _ints(value, 1)
    return numbers[0] if numbers and 1 <= numbers[0] <= 8 else 1


def _time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
