"""The engine's public data types: what callers pass in and what they get back.

Coordinates: every size and box is in the *oriented* input's pixels (EXIF orientation
applied), as the Pixian contract says. Boxes are Pixian-ordered (top, left, width, height).
"""

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

# Reseller mode: which engine made a result (`upstream`, or `local` for the fallback).
ENGINE_HEADER = "X-Cutout-Engine"
OutputFormat = Literal["auto", "png", "jpeg", "webp", "zip", "delta_png", "mask"]
VerticalAlignment = Literal["top", "middle", "bottom"]
Unit = Literal["px", "%"]


@dataclass(frozen=True)
class Box:
    top: int = 0
    left: int = 0
    width: int = 0
    height: int = 0

    def header(self) -> str:
        return f"{self.top} {self.left} {self.width} {self.height}"


@dataclass(frozen=True)
class Length:
    value: float
    unit: Unit = "px"


@dataclass(frozen=True)
class Margin:
    """CSS order. `%` is of the content's height for top/bottom, its width for left/right."""

    top: Length = Length(0)
    right: Length = Length(0)
    bottom: Length = Length(0)
    left: Length = Length(0)


@dataclass(frozen=True)
class Rect:
    """A region as x1, y1, x2, y2 (exclusive) in oriented input pixels; `%` values are resolved
    by the caller's parser only when the size is known, so fractions in [0, 1] are allowed too
    when `relative` is set."""

    x1: float
    y1: float
    x2: float
    y2: float
    relative: bool = False


@dataclass(frozen=True)
class RemovalOptions:
    """Everything that shapes one result. Defaults are Pixian's defaults."""

    test: bool = False
    max_pixels: int = 25_000_000
    background_color: tuple[int, int, int] | None = None
    background_image: bytes | None = None
    crop_to_foreground: bool = False
    margin: Margin = Margin()
    target_size: tuple[int, int] | None = None
    vertical_alignment: VerticalAlignment = "middle"
    output_format: OutputFormat = "auto"
    jpeg_quality: int = 75
    # remove.bg: subject size relative to the result (0.1-1.0), and where it sits
    # (fractions of the free space, x then y; None keeps the original position).
    scale: float | None = None
    position: tuple[float, float] | None = None
    # remove.bg `roi` / Baidu `control`: only inside these regions can be foreground.
    regions: tuple[Rect, ...] = ()
    # Baidu refine_mask=false: the raw map, no snapping, no colour estimation.
    raw: bool = False
    # remove.bg's `size`: the finished result (after crop margins) is scaled down to at most
    # this many pixels; None leaves it as the layout made it.
    max_result_pixels: int | None = None
    # output_format "mask": None keeps the 8-bit alpha; a number makes it binary (alpha at or
    # above it white, the rest black), as Baidu's return_form=mask is.
    mask_threshold: int | None = None


@dataclass(frozen=True)
class RemovalContext:
    """What an engine may need of the request besides the image and the options: an upstream
    engine forwards the input's file name and derives its idempotency key from the `account`,
    the `endpoint`, the customer's own `idempotency_key` (else the request's `reference`) and
    the `fingerprint` (removal/fingerprint.py). `forward`: a Pixian-format request's own option
    fields as the customer sent them (already checked), which an upstream engine sends on
    unchanged in one call; None for every other request. `started`: when the request began
    (`time.monotonic()`; None: when the engine is called), so an engine knows the time left."""

    reference: str = ""
    fingerprint: str = ""
    filename: str = ""
    account: str = ""
    endpoint: str = ""
    idempotency_key: str = ""
    forward: tuple[tuple[str, str], ...] | None = None
    started: float | None = None

    def start(self) -> float:
        """When the request began, else now (an engine called without a request)."""
        return self.started if self.started is not None else time.monotonic()


@dataclass
class Cutout:
    """The expensive part of a removal, kept so that re-rendering with other options is free.

    `rgb` is the oriented input at processing size (after `max_pixels`), `alpha` the
    segmentation at the same size (uint8, already limited by the input's own alpha),
    `full_size` the oriented input's size before any downscaling. When `max_pixels` scaled
    the input down, `full_rgb` and `full_input_alpha` keep it at full size for the Delta PNG,
    which is always at the input's size. `colours_estimated`: `rgb` already holds the
    foreground's own colours (an upstream's cut-out), so rendering does not estimate them.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    full_size: tuple[int, int]
    orientation: int = 1
    source_format: str = ""
    full_rgb: np.ndarray | None = None
    full_input_alpha: np.ndarray | None = None
    colours_estimated: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # Reseller mode: what the upstream charged for the analysis (None for the local engine).
    upstream_credits: str | None = None


@dataclass
class RemovalResult:
    body: bytes
    content_type: str
    input_size: tuple[int, int]
    result_size: tuple[int, int]
    input_foreground: Box
    result_foreground: Box
    orientation: int = 1
    # Which engine made it ("local", "upstream"), for the call record.
    engine: str = ""
    # Reseller mode: what the upstream charged for this result (None for the local engine).
    upstream_credits: str | None = None
    # Reseller mode: headers for the answer besides the wire format's own (an upstream's
    # `X-*` headers passed through, `X-Cutout-Engine`).
    headers: dict[str, str] = field(default_factory=dict)


class Remover(Protocol):
    """What the APIs and the website call: the local engine or an upstream one.

    `analyse` is the expensive part (decode, scale, segment); `render` turns its `Cutout` into
    bytes for given options and is shared by every engine; `remove` is both, and an engine may
    answer it in one call. Callers use `remove` when nothing will be re-rendered.
    """

    name: str

    def analyse(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> Cutout: ...

    def render(self, cutout: Cutout, options: RemovalOptions) -> RemovalResult: ...

    def remove(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> RemovalResult: ...
