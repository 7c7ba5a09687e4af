"""A request's fingerprint: what makes two requests the same request, defined once.

The endpoint, the parsed options and the SHA-256 of the image's bytes (or its URL): never the
raw body, since a client's retry of the same request carries a new multipart boundary and may
order its fields differently. `Idempotency-Key` compares fingerprints (a key reused for
another request is refused), and an upstream engine derives its own idempotency key from it.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from removal.engine.types import RemovalOptions
from removal.errors import RemovalError
from removal.inputs import ImageInput


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _digest(*parts: Any) -> str:
    text = json.dumps(_plain(list(parts)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def of_request(endpoint: str, options: RemovalOptions, image: ImageInput) -> str:
    """64 hex characters; the same for the same endpoint, options and image."""
    source = {"url": image.url} if image.kind == "url" else {"data": image.data}
    return _digest(endpoint, dataclasses.asdict(options), source)


def of_parts(endpoint: str, *parts: Any) -> str:
    """The fingerprint of a request of another shape (a batch): its endpoint and its parsed
    parts (plain values; bytes count by their SHA-256)."""
    return _digest(endpoint, *parts)


def of_failure(endpoint: str, error: RemovalError) -> str:
    """The fingerprint of a request refused while it was read (no options, no image): the
    same refusal again is the same request."""
    return _digest(endpoint, "refused", error.code, error.message)


@dataclass(frozen=True)
class ParsedRequest:
    """A removal request as its wire format read it, with its fingerprint."""

    image: ImageInput
    options: RemovalOptions
    fingerprint: str


def parsed(endpoint: str, image: ImageInput, options: RemovalOptions) -> ParsedRequest:
    return ParsedRequest(image, options, of_request(endpoint, options, image))
