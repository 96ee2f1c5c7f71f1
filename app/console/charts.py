"""Geometry of the console's SVG charts, drawn on the server (no chart library, no script):
a semicircular gauge and a step chart. Pure functions; templates/console/charts.html draws
what they compute."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Gauge:
    """A half circle filled in proportion to value / limit (full beyond the limit)."""

    value: int
    limit: int
    track: str  # the SVG path of the empty half circle
    fill: str | None  # the path of the filled part; None when there is nothing to fill
    is_over: bool

    @property
    def percent(self) -> int | None:
        return round(100 * self.value / self.limit) if self.limit else None


GAUGE_RADIUS = 80
GAUGE_CENTRE = (100, 100)


def gauge(value: int, limit: int) -> Gauge:
    """The gauge of `value` against `limit` (a limit of 0 is full as soon as there is one)."""
    cx, cy = GAUGE_CENTRE
    r = GAUGE_RADIUS
    track = f"M {cx - r} {cy} A {r} {r} 0 0 1 {cx + r} {cy}"
    if limit > 0:
        share = min(max(value, 0) / limit, 1.0)
    else:
        share = 1.0 if value > 0 else 0.0
    fill = None
    if share > 0:
        angle = math.pi * (1 - share)
        x, y = cx + r * math.cos(angle), cy - r * math.sin(angle)
        fill = f"M {cx - r} {cy} A {r} {r} 0 0 1 {x:.2f} {y:.2f}"
    return Gauge(value, limit, track, fill, value > limit)


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class StepChart:
    """Two step lines over a period of days: values (so far) and a limit (the tier)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    values: str  # SVG polyline points
    limit: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    today: float | None  # x of the last day with a value, when the period goes on after it


WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 624, 16, 208


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above value (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return int(math.ceil(step * power))
    return int(math.ceil(10 * power))


def step_chart(
    start: date, end: date, days: Sequence[date], values: Sequence[int], limits: Sequence[int]
) -> StepChart:
    """Step lines of `values` and `limits` (one per day of `days`) on an x axis from `start`
    to `end` (each day its own step) and a y axis from 0 to a round number above both."""
    span = max((end - start).days + 1, 1)
    top_value = nice_ceiling(max([*values, *limits, 1]) * 1.1)

    def x(day_index: int) -> float:
        return LEFT + (RIGHT - LEFT) * day_index / span

    def y(value: int) -> float:
        return BOTTOM - (BOTTOM - TOP) * value / top_value

    def steps(series: Sequence[int]) -> str:
        """The step line's corners only: a point where the value changes, and the last day's
        end (a year of days is a handful of points, not 730)."""
        points: list[str] = []
        previous: int | None = None
        for day, value in zip(days, series, strict=True):
            left = x((day - start).days)
            if previous is None:
                points.append(f"{left:.1f},{y(value):.1f}")
            elif value != previous:
                points.append(f"{left:.1f},{y(previous):.1f}")
                points.append(f"{left:.1f},{y(value):.1f}")
            previous = value
        if previous is not None:
            points.append(f"{x((days[-1] - start).days + 1):.1f},{y(previous):.1f}")
        return " ".join(points)

    y_ticks = [Tick(y(v), str(v)) for v in sorted({0, top_value // 2, top_value})]
    x_ticks = [Tick(LEFT, start.isoformat()), Tick(RIGHT, end.isoformat())]
    today = None
    if days and days[-1] < end:
        today = x((days[-1] - start).days + 1)
    return StepChart(
        WIDTH,
        HEIGHT,
        LEFT,
        RIGHT,
        TOP,
        BOTTOM,
        steps(values),
        steps(limits),
        y_ticks,
        x_ticks,
        today,
    )
