"""Building blocks of the SVG figures: the figure element (title, description, role), linear
scales, axes with ticks and grid, step paths, bands and legends.

Elements are built with :mod:`xml.etree.ElementTree`, so every text and attribute is escaped.
The plot area carries its data domain and pixel range (``data-domain``, ``data-range``): a test, or
a reader of the source, can map any coordinate back to the data.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from datetime import date

NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"
TEXT = "#1a1a1a"  # 17:1 on white
MUTED = "#4d4d4d"  # 8.5:1 on white: axis labels, notes
GRID = "#d9d9d9"
# Okabe–Ito colours with at least 3:1 contrast on white (WCAG 1.4.11 graphics), each with its own
# dash pattern so the series differ without colour (colour blindness, greyscale printing).
SERIES: tuple[tuple[str, str], ...] = (
    ("#0072B2", ""), ("#D55E00", "7 4"), ("#007A5A", "2 3"), ("#8E4585", "9 3 2 3"), ("#000000", "4 2"),
)
MONTH = 365.25 / 12
_ID = re.compile(r"[^A-Za-z0-9_-]")


def num(v: float) -> str:
    """A coordinate with one decimal, no trailing zeros."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


class Figure:
    """An ``<svg>`` with ``<title>`` and ``<desc>`` (named by ``aria-labelledby``) and a viewBox."""

    def __init__(self, ident: str, width: float, height: float, title: str, desc: str) -> None:
        self.ident = _ID.sub("-", ident)
        self.width, self.height = width, height
        self.root = ET.Element("svg", {
            "xmlns": NS, "viewBox": f"0 0 {num(width)} {num(height)}", "width": num(width), "height": num(height),
            "role": "img", "aria-labelledby": f"{self.ident}-title {self.ident}-desc", "id": self.ident,
            "class": "figure", "font-family": FONT, "font-size": "13", "fill": TEXT,
            "preserveAspectRatio": "xMinYMin meet"})
        ET.SubElement(self.root, "title", {"id": f"{self.ident}-title"}).text = title
        ET.SubElement(self.root, "desc", {"id": f"{self.ident}-desc"}).text = desc
        ET.SubElement(self.root, "rect", {"width": num(width), "height": num(height), "fill": "#ffffff"})

    def group(self, label: str | None = None, parent: ET.Element | None = None, /, **attrs: str) -> ET.Element:
        g = ET.SubElement(self.root if parent is None else parent, "g", attrs)
        if label:
            g.set("aria-label", label)
        return g

    def render(self) -> str:
        return ET.tostring(self.root, encoding="unicode")


def el(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str | float) -> ET.Element:
    """A child element; attribute names with ``_`` become ``-`` (``stroke_width``)."""
    e = ET.SubElement(parent, tag, {k.replace("_", "-"): num(v) if isinstance(v, float | int) else v
                                    for k, v in attrs.items()})
    if text is not None:
        e.text = text
    return e


class Scale:
    """A linear map from a data interval to a pixel interval (either may be reversed)."""

    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        self.d0, self.d1, self.r0, self.r1 = d0, d1 if d1 != d0 else d0 + 1, r0, r1

    def __call__(self, v: float) -> float:
        return self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


def nice_step(span: float, target: int = 5) -> float:
    """1, 2 or 5 × 10^k, giving about ``target`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def count_ticks(top: float) -> list[float]:
    """Whole-number ticks from 0 to the first one at or above ``top``."""
    step = max(nice_step(top), 1.0)
    return [i * step for i in range(math.ceil(top / step) + 1)]


def month_ticks(last_day: float, step_months: int = 3) -> list[float]:
    """Days at every ``step_months`` months from 0 to ``last_day`` (the reports' month axis)."""
    while last_day / MONTH / step_months > 8:
        step_months *= 2
    return [m * MONTH for m in range(0, int(last_day / MONTH) + 1, step_months)] or [0.0]


def month_ticks_between(first: date, last: date) -> list[date]:
    """First days of months from ``first`` to ``last``, thinned to at most about 8 ticks."""
    months = []
    y, m = first.year, first.month
    while date(y, m, 1) <= last:
        months.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    every = max(1, math.ceil(len(months) / 8))
    return months[::every]


class Axes:
    """A plot area: frame, grid, ticks and labels; ``x``/``y`` map data to pixels."""

    def __init__(self, fig: Figure, box: tuple[float, float, float, float], xdomain: tuple[float, float],
                 ydomain: tuple[float, float], *, xticks: Sequence[float], yticks: Sequence[float],
                 xlabel: str, ylabel: str, xfmt: Callable[[float], str] = num,
                 yfmt: Callable[[float], str] = num) -> None:
        left, top, right, bottom = box
        self.box = box
        self.x = Scale(*xdomain, left, right)
        self.y = Scale(*ydomain, bottom, top)
        self.g = fig.group(None, **{"class": "plot", "data-domain": " ".join(num(v) for v in xdomain + ydomain),
                                    "data-range": " ".join(num(v) for v in (left, right, bottom, top))})
        axes = fig.group("axes", self.g, **{"aria-hidden": "true"})
        for t in yticks:
            el(axes, "line", x1=left, x2=right, y1=self.y(t), y2=self.y(t), stroke=GRID, stroke_width=1)
            el(axes, "text", yfmt(t), x=left - 6, y=self.y(t) + 4, text_anchor="end", fill=MUTED)
        for t in xticks:
            el(axes, "line", x1=self.x(t), x2=self.x(t), y1=bottom, y2=bottom + 5, stroke=MUTED, stroke_width=1)
            el(axes, "text", xfmt(t), x=self.x(t), y=bottom + 19, text_anchor="middle", fill=MUTED)
        el(axes, "path", d=f"M{num(left)} {num(top)}V{num(bottom)}H{num(right)}", fill="none", stroke=MUTED,
           stroke_width=1)
        el(axes, "text", xlabel, x=(left + right) / 2, y=bottom + 38, text_anchor="middle")
        el(axes, "text", ylabel, x=14, y=(top + bottom) / 2, text_anchor="middle",
           transform=f"rotate(-90 14 {num((top + bottom) / 2)})")

    def step_path(self, times: Sequence[float], values: Sequence[float], end: float) -> str:
        """A right-continuous step function from its points, drawn on to ``end``."""
        x, y = self.x, self.y
        parts = [f"M{num(x(times[0]))} {num(y(values[0]))}"]
        for t, v in zip(times[1:], values[1:], strict=True):
            parts.append(f"H{num(x(t))}V{num(y(v))}")
        parts.append(f"H{num(x(max(end, times[-1])))}")
        return "".join(parts)

    def step_band(self, times: Sequence[float], low: Sequence[float], high: Sequence[float], end: float) -> str:
        """The area between two step functions sharing their times, as one closed path."""
        upper = self.step_path(times, high, end)
        x, y = self.x, self.y
        back = [f"V{num(y(low[-1]))}"]
        for i in range(len(times) - 1, 0, -1):
            back.append(f"H{num(x(times[i]))}V{num(y(low[i - 1]))}")
        back.append(f"H{num(x(times[0]))}Z")
        return upper + "".join(back)


def legend(fig: Figure, x: float, y: float, items: Sequence[tuple[str, str, str]], *, width: float = 0) -> float:
    """Legend lines (label, colour, dash) from (x, y) down; returns the y below the last line."""
    g = fig.group("legend", **{"class": "legend"})
    for label, colour, dash in items:
        attrs: dict[str, str | float] = {"stroke": colour, "stroke_width": 3}
        if dash:
            attrs["stroke_dasharray"] = dash
        el(g, "line", x1=x, x2=x + 28, y1=y - 4, y2=y - 4, **attrs)
        el(g, "text", label, x=x + 36, y=y)
        y += 18
    return y


def series(i: int) -> tuple[str, str]:
    return SERIES[i % len(SERIES)]


def attrs_of(colour: str, dash: str, **more: str | float) -> Mapping[str, str | float]:
    out: dict[str, str | float] = {"stroke": colour, "fill": "none", **more}
    if dash:
        out["stroke_dasharray"] = dash
    return out
