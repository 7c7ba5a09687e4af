"""Numbers and times on the wire (spec/settings.md): one helper each, reused by every API.

- Credits: the shortest plain decimal (`1`, `0.25`, `0`), never exponent notation; a JSON
  number in bodies, the same text in `X-Credits-Charged` and `X-Credits-Calculated`.
- Times: UTC, second precision, `Z` suffix (`2027-01-31T12:00:00Z`).

Credits read from people and from Stripe's metadata (`parse_credits`) take the same plain form.
"""

import json
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_credits(value: Decimal | int | str) -> str:
    """`Decimal("1.000000")` -> `"1"`, `Decimal("0.25")` -> `"0.25"`, `Decimal("1E-7")` ->
    `"0.0000001"`. Raises ValueError for NaN or infinity."""
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite number of credits: {value!r}")
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


# ASCII digits only: `\d` and Decimal() also take other scripts' digits, `_` and exponents.
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]{1,6})?")


def parse_credits(text: str) -> Decimal:
    """`"100"` -> `Decimal("100")`, `"0.5"` -> `Decimal("0.5")`: ASCII digits, an optional point
    and at most six decimals (the ledger's precision, so nothing is rounded). Raises ValueError
    for anything else: signs, exponents, `_`, spaces, other scripts' digits, NaN."""
    if not isinstance(text, str) or not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain decimal number of credits: {text!r:.40}")
    return Decimal(text)


def format_time(value: datetime | None) -> str:
    """An aware datetime as `YYYY-MM-DDTHH:MM:SSZ` in UTC; None is the epoch (Pixian's "never")."""
    moment = EPOCH if value is None else value.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(data: Any) -> str:
    """JSON text in which every Decimal is written as a plain-decimal JSON number.

    `json` would write a float (`1.0`, `1e-06`) or refuse; so each Decimal becomes a unique
    placeholder string first, replaced by its formatted text afterwards.
    """
    token = secrets.token_hex(8)
    numbers: list[str] = []

    def walk(item: Any) -> Any:
        if isinstance(item, Decimal):
            numbers.append(format_credits(item))
            return f"{token}:{len(numbers) - 1}"
        if isinstance(item, dict):
            return {key: walk(value) for key, value in item.items()}
        if isinstance(item, list | tuple):
            return [walk(value) for value in item]
        return item

    text = json.dumps(walk(data), ensure_ascii=False, separators=(",", ":"))
    for index, number in enumerate(numbers):
        text = text.replace(f'"{token}:{index}"', number, 1)
    return text
