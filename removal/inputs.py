"""A request's one image: which field carries it, its bytes (file or base64), or a URL to fetch.

Each wire format names its fields (`InputFields`) and says how it picks among them
(`Selection`): Pixian and remove.bg want exactly one (1001 none, 1002 several); Baidu takes
the first given in field order ("image wins over url").
"""

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from removal import errors
from removal.errors import RemovalError

PIXIAN_BASE64_MAX_CHARS = 1024 * 1024

_DATA_URL_PREFIX = re.compile(r"data:[^,]*?;base64,", re.IGNORECASE)
_BASE64_JUNK = re.compile(r"\s+")

Selection = Literal["exactly_one", "first_wins"]


@dataclass(frozen=True)
class ImageInput:
    """The one image of a request: its bytes (file or base64), or a URL still to fetch."""

    kind: Literal["file", "base64", "url"]
    data: bytes = b""
    url: str = ""
    filename: str = ""
    # The request field it came from ("image.url", "image_url", ...), for error messages.
    field: str = ""


@dataclass(frozen=True)
class InputFields:
    """A wire format's names for its inputs (None: the format has no such input)."""

    file: str | None = "image"
    base64: str | None = "image.base64"
    url: str | None = "image.url"
    base64_max_chars: int | None = PIXIAN_BASE64_MAX_CHARS
    selection: Selection = "exactly_one"

    @property
    def names(self) -> list[str]:
        return [name for name in (self.file, self.base64, self.url) if name]


PIXIAN_INPUTS = InputFields()


def decode_base64(
    text: Any,
    name: str,
    *,
    max_chars: int | None = PIXIAN_BASE64_MAX_CHARS,
    code: int = errors.BAD_BASE64,
) -> bytes:
    """Standard or URL-safe base64; a `data:…;base64,` prefix, line breaks and missing padding
    are tolerated. `max_chars` counts the base64 text without the prefix."""
    if not isinstance(text, str):
        raise RemovalError(code, f"{name} must be a base64 string.")
    text = _DATA_URL_PREFIX.sub("", text.lstrip(), count=1)
    if max_chars is not None and len(text) > max_chars:
        raise RemovalError(
            code, f"{name} is longer than {max_chars:,} characters; upload the file instead."
        )
    text = _BASE64_JUNK.sub("", text)
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RemovalError(code, f"{name} is not valid base64.") from None


def _read_upload(upload: Any) -> bytes:
    if isinstance(upload, bytes):
        return upload
    if isinstance(upload, str):
        # A text part under the file's name: its bytes are read as the image (and usually fail).
        return upload.encode("utf-8", "surrogateescape")
    upload.seek(0)
    return upload.read()


def _uploads(fields: Mapping[str, Any], files: Mapping[str, Any], name: str | None) -> list:
    if not name:
        return []
    uploads = files.getlist(name) if hasattr(files, "getlist") else []
    if not uploads and name in files:
        uploads = [files[name]]
    if not uploads and name in fields:
        uploads = [fields[name]]
    return uploads


def _listed(names: list[str], joiner: str) -> str:
    return ", ".join(names[:-1]) + f" {joiner} {names[-1]}" if len(names) > 1 else names[0]


def select_input(
    fields: Mapping[str, Any], files: Mapping[str, Any], names: InputFields = PIXIAN_INPUTS
) -> ImageInput:
    """The request's image, chosen by `names.selection`; raises 1001, 1002, 1003 or 1005.

    A field counts as given when it is present, even empty (then it is an empty image).
    `files` may be a Django MultiValueDict; several files under the one name are two inputs.
    """
    uploads = _uploads(fields, files, names.file)
    given = [
        name
        for name, present in (
            (names.file, bool(uploads)),
            (names.base64, names.base64 in fields),
            (names.url, names.url in fields),
        )
        if name and present
    ]
    if not given:
        raise RemovalError(
            errors.NO_IMAGE, f"No image given: send one of {_listed(names.names, 'or')}."
        )
    if names.selection == "exactly_one" and (len(given) > 1 or len(uploads) > 1):
        raise RemovalError(
            errors.SEVERAL_IMAGES, f"Send only one image: one of {_listed(names.names, 'and')}."
        )
    chosen = given[0]
    if chosen == names.file:
        upload = uploads[0]
        found = ImageInput(
            "file", _read_upload(upload), filename=getattr(upload, "name", ""), field=chosen
        )
    elif chosen == names.base64:
        text = fields[chosen]
        data = decode_base64(text, chosen, max_chars=names.base64_max_chars)
        found = ImageInput("base64", data, field=chosen)
    else:
        url = fields[chosen]
        return ImageInput("url", url=url.strip() if isinstance(url, str) else "", field=chosen)
    if not found.data:
        raise RemovalError(errors.EMPTY_IMAGE, f"The supplied image ({chosen}) is empty.")
    return found
