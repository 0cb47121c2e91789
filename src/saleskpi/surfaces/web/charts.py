"""Small charts as inline SVG, drawn on the server: no JavaScript, nothing from elsewhere.

Geometry only; ``templates/macros.html`` draws it (escaping every label). Each chart
sits above the table of its numbers, which is also what its downloads contain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

WIDTH = 640.0
HEIGHT = 260.0
# The value axis' labels sit inside the plot, above their grid lines, left-aligned:
# however long ("1,25 млн USD"), they are never cut off at the SVG's left edge, and
# the plot keeps its width on a phone (where app.css draws text at 21 units, ~11 px).
LEFT, RIGHT, TOP, BOTTOM = 4.0, 8.0, 26.0, 36.0
BAR_ROW = 32.0  # height of one bar of a horizontal chart
LABEL_WIDTH = 240.0
LABEL_CHARS = 20  # a category label of a horizontal chart, cut with "…" beyond this
#                   (macros.html; the bar's tooltip has the whole label)
VALUE_ROOM = 130.0  # right of the longest bar: its value's text
CATEGORY_ROOM = 100.0  # room one category label needs under the axis, at phone size


@dataclass(frozen=True)
class Point:
    """One value to draw: its label, its number and how the page writes the number."""

    label: str
    value: float | None
    text: str
    low: float | None = None  # an interval around the value (drawn as a band)
    high: float | None = None


@dataclass
class Shape:
    x: float
    y: float
    width: float = 0.0
    height: float = 0.0
    text: str = ""
    label: str = ""


@dataclass
class Chart:
    kind: Literal["bars", "line", "hbars"]
    title: str
    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)  # bars, or the line's dots
    ticks: list[Shape] = field(default_factory=list)  # value axis: y (or x) and text
    labels: list[Shape] = field(default_factory=list)  # category axis
    line: str = ""  # polyline points
    band: str = ""  # polygon points of the interval
    reference: str = ""  # polyline points of a reference line (the plan)
    empty: bool = False
    left: float = LEFT  # the plot area's left and right edges
    right: float = WIDTH - RIGHT
    label_width: float = LABEL_WIDTH
    label_chars: int = LABEL_CHARS
    names: bool = False  # the categories are people's names: not to be translated
    subject: str = ""  # whose chart (a rep's or team's name), shown before the title as is


def _nice_max(value: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10.0 * power


def _label_step(count: int, room: float, width: float = CATEGORY_ROOM) -> int:
    """Show every n-th category label so that they do not overlap."""
    return max(1, math.ceil(count * width / room)) if count else 1


def _scale(points: Sequence[Point],
           tick_text: Callable[[float], str]) -> tuple[float, list[tuple[float, str]]]:
    values = [v for p in points for v in (p.value, p.high) if v is not None]
    top = _nice_max(max(values, default=0.0))
    return top, [(top * i / 4, tick_text(top * i / 4)) for i in range(5)]


def column_chart(title: str, points: Sequence[Point], tick_text: Callable[[float], str],
                 kind: Literal["bars", "line"] = "bars",
                 reference: Sequence[float | None] = ()) -> Chart:
    """Vertical bars (amounts per period) or a line with its interval band (rates, a
    forecast's fan); ``reference``: a value per point for a dashed line (the plan)."""
    chart = Chart(kind, title, WIDTH, HEIGHT, empty=not any(p.value for p in points))
    if not points:
        return chart
    top, ticks = _scale([*points, *(Point("", v, "") for v in reference if v is not None)],
                        tick_text)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(points)

    def y_of(value: float) -> float:
        return round(TOP + plot_h * (1 - max(value, 0.0) / top), 1)

    chart.ticks = [Shape(LEFT + 2, y_of(v), text=t) for v, t in ticks]
    step = _label_step(len(points), plot_w)
    for i, point in enumerate(points):
        centre = LEFT + slot * (i + 0.5)
        if i % step == 0:
            chart.labels.append(Shape(round(centre, 1), HEIGHT - BOTTOM + 16, text=point.label))
        if point.value is None:
            continue
        if kind == "bars":
            width = max(slot * 0.7, 1.0)
            y = y_of(point.value)
            chart.shapes.append(Shape(round(centre - width / 2, 1), y, round(width, 1),
                                      round(TOP + plot_h - y, 1), point.text, point.label))
        else:
            chart.shapes.append(Shape(round(centre, 1), y_of(point.value), text=point.text,
                                      label=point.label))
    if kind == "line":
        chart.line = " ".join(f"{s.x},{s.y}" for s in chart.shapes)
        banded = [(LEFT + slot * (i + 0.5), p) for i, p in enumerate(points)
                  if p.low is not None and p.high is not None]
        if len(banded) > 1:
            upper = [f"{round(x, 1)},{y_of(p.high or 0)}" for x, p in banded]
            lower = [f"{round(x, 1)},{y_of(p.low or 0)}" for x, p in reversed(banded)]
            chart.band = " ".join(upper + lower)
        chart.reference = " ".join(f"{round(LEFT + slot * (i + 0.5), 1)},{y_of(v)}"
                                   for i, v in enumerate(reference) if v is not None)
    return chart


def bar_list(title: str, points: Sequence[Point]) -> Chart:
    """Horizontal bars, one per row (reps on a KPI, stages of a funnel)."""
    height = TOP + BOTTOM / 2 + BAR_ROW * max(len(points), 1)
    chart = Chart("hbars", title, WIDTH, height, empty=not any(p.value for p in points))
    top = max((p.value for p in points if p.value is not None), default=0.0)
    room = WIDTH - LABEL_WIDTH - RIGHT - VALUE_ROOM
    for i, point in enumerate(points):
        y = TOP + BAR_ROW * i
        width = room * (max(point.value, 0.0) / top) if point.value and top > 0 else 0.0
        chart.shapes.append(Shape(LABEL_WIDTH, round(y, 1), round(width, 1), BAR_ROW - 8,
                                  point.text, point.label))
    return chart
