"""Small bar charts drawn on the server as SVG (no script, no library, nothing from a CDN):
the dashboard's calls and credits per day, stacked by channel and mode."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WIDTH = 640
HEIGHT = 220
LEFT = 52
RIGHT = 28
TOP = 10
BOTTOM = 24
# One colour per series of removal/usage.py (a test-mode series is the paler of its pair).
COLORS = {
    "api-production": "#1f5fd1",
    "api-test": "#9db9ef",
    "website-production": "#17804f",
    "website-test": "#8fd0b0",
    "batch-production": "#7b3fc4",
    "batch-test": "#c7aef0",
}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    color: str
    label: str
    total: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    legend: tuple[LegendItem, ...]
    left: int = LEFT
    right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM


@dataclass(frozen=True)
class Stack:
    """One series of a chart: a key into COLORS, a label, a value per day."""

    key: str
    label: str
    values: Sequence[int | Decimal]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def stacked_bars(
    title: str,
    days: Sequence[date],
    stacks: Sequence[Stack],
    fmt: Callable[[int | Decimal], str] = str,
) -> Chart:
    """A bar per day, its series stacked in order; series with nothing are left out of the
    legend. `fmt` writes a value for the tooltips, axis and legend."""
    totals = [sum((s.values[i] for s in stacks), 0) for i in range(len(days))]
    top = nice_ceiling(float(max(totals, default=0)))
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        base = 0.0
        for stack in stacks:
            value = stack.values[i]
            if not value:
                continue
            height = float(value) / top * plot_height
            base += height
            bars.append(
                Bar(
                    x=round(LEFT + i * slot + slot * 0.15, 2),
                    y=round(HEIGHT - BOTTOM - base, 2),
                    width=round(slot * 0.7, 2),
                    height=round(height, 2),
                    color=COLORS.get(stack.key, "#666"),
                    title=f"{day:%b %d}: {fmt(value)} ({stack.label})",
                )
            )
    # Whole calls have no half-way tick (a top of 5 is marked 0 and 5, not 2.5).
    whole = all(isinstance(v, int) for s in stacks for v in s.values)
    y_ticks = tuple(
        Tick(round(HEIGHT - BOTTOM - plot_height * f, 2), fmt(_tick_value(top * f)))
        for f in (0, 0.5, 1)
        if not (whole and top * f != int(top * f))
    )
    x_ticks = tuple(
        Tick(round(LEFT + i * slot + slot / 2, 2), f"{day:%b %d}")
        for i, day in enumerate(days)
        if (len(days) - 1 - i) % 7 == 0
    )
    legend = tuple(
        LegendItem(COLORS.get(s.key, "#666"), s.label, fmt(sum(s.values, 0)))
        for s in stacks
        if any(s.values)
    )
    return Chart(title, WIDTH, HEIGHT, tuple(bars), y_ticks, x_ticks, legend)


def _tick_value(value: float) -> int | Decimal:
    return int(value) if value == int(value) else Decimal(str(round(value, 6)))
