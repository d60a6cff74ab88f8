"""A patient's haematology course as SVG: ANC, Hb and PLT in three stacked panels on the MSC-day axis,
with MSC infusions, transfusions, endpoint dates and death. Pure: plain data in, an SVG string out.

x is days since MSC D1 (labelled as MSC D-numbers: D1 = the first infusion, no D0), or days from
the transplant when no infusion was given. ANC and PLT are on log scales, Hb linear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from html import escape

import attrs

WIDTH, PANEL, GAP, LEFT, RIGHT, TOP, BOTTOM = 900, 150, 26, 70, 78, 30, 46
COLOURS = {"anc": "#0b5cad", "hb": "#a4161a", "plt": "#1e6b30"}  # each >= 4.5:1 on white (WCAG AA)
INFUSION, EVENT, MUTED = "#6a3d9a", "#1b1f24", "#4a5360"
FLOOR = {"anc": 0.01, "plt": 1.0}
HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="3"'  # labels stay readable over lines


@attrs.frozen
class Course:
    subject: str
    transplant: date
    d1: date | None  # MSC D1 (the first infusion), None before any
    labs: Sequence[tuple[date, float | None, float | None, float | None]]  # day, ANC, Hb, PLT
    infusions: Sequence[tuple[date, str]] = ()  # day, source event ref
    transfusions: Sequence[tuple[date, str]] = ()  # day, product (rbc, platelets, ...)
    endpoints: Sequence[tuple[str, date, str]] = ()  # label, day, panel ("anc", "hb", "plt") it belongs to
    death: date | None = None
    end: date | None = None  # the last day to show (evaluation date)
    thresholds: dict[str, Sequence[tuple[float, str]]] = attrs.field(factory=dict)  # panel -> (value, label)


def msc_day(day: date, d1: date | None, transplant: date) -> str:
    if d1 is None:
        return f"day +{(day - transplant).days}"
    n = (day - d1).days
    return f"D{n + 1 if n >= 0 else n}"


def course_svg(c: Course) -> str:
    origin = c.d1 or c.transplant
    days = [(d - origin).days for d, *_ in c.labs] + [(d - origin).days for d, _ in c.infusions]
    days += [(d - origin).days for d, _ in c.transfusions] + [(d - origin).days for _, d, _ in c.endpoints]
    days += [(d - origin).days for d in (c.death, c.end) if d is not None] + [0]
    lo, hi = min(days) - 2, max(days) + 3
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + 3 * PANEL + 2 * GAP + BOTTOM

    def x(day: date) -> float:
        return LEFT + ((day - origin).days - lo) / (hi - lo) * plot_w

    axis = "MSC day (D1 = first infusion)" if c.d1 else "days from transplant"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-labelledby="course-title course-desc" class="course" font-family="system-ui, sans-serif" font-size="11">',
             f'<title id="course-title">{escape(c.subject)}: haematology course</title>',
             f'<desc id="course-desc">{escape(_describe(c))}</desc>',
             f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>']
    for i, (key, label, log) in enumerate((("anc", "ANC (10⁹/L)", True), ("hb", "Hb (g/L)", False),
                                           ("plt", "PLT (10⁹/L)", True))):
        top = TOP + i * (PANEL + GAP)
        parts += _panel(c, key, label, log, top, i + 1, x, lo, hi, origin)
    ticks = _ticks(lo, hi)
    bottom = TOP + 3 * PANEL + 2 * GAP
    for t in ticks:
        tx = LEFT + (t - lo) / (hi - lo) * plot_w
        label = (f"D{t + 1 if t >= 0 else t}" if c.d1 else f"+{t}")
        parts.append(f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="{MUTED}"/>'
                     f'<text x="{tx:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{MUTED}">{label}</text>')
    parts.append(f'<text x="{LEFT}" y="{height - 8}" fill="{EVENT}">'
                 f'{axis}{" — D1 = " + c.d1.isoformat() if c.d1 else ""}</text>')
    parts.append(_legend(height - 8))
    parts.append("</svg>")
    return "".join(parts)


def _panel(c: Course, key: str, label: str, log: bool, top: int, index: int, x, lo: int, hi: int,
           origin: date) -> list[str]:
    values = [(d, v) for d, *rest in c.labs if (v := rest[index - 1]) is not None]
    marks = [t for t, _ in c.thresholds.get(key, ())]
    data = [max(v, FLOOR[key]) if log else v for _, v in values] + marks
    low, high = (min(data), max(data)) if data else (1.0, 10.0)
    if log:
        low, high = math.log10(max(low, FLOOR[key]) / 1.6), math.log10(high * 1.6)
    else:
        pad = (high - low) * 0.1 or 5.0
        low, high = max(0.0, low - pad), high + pad

    def y(v: float) -> float:
        value = math.log10(max(v, FLOOR[key])) if log else v
        return top + PANEL - (value - low) / (high - low) * PANEL

    right = WIDTH - RIGHT
    out = [f'<g class="panel-{key}">',
           f'<rect x="{LEFT}" y="{top}" width="{right - LEFT}" height="{PANEL}" fill="none" stroke="#c9d0d9"/>',
           f'<text x="{LEFT}" y="{top - 6}" font-weight="600" fill="{COLOURS[key]}">{label}</text>']
    for tick in _value_ticks(low, high, log):
        ty = y(tick)
        out.append(f'<line x1="{LEFT - 4}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="#e4e8ee"/>'
                   f'<text x="{LEFT - 7}" y="{ty + 4:.1f}" text-anchor="end" fill="{MUTED}">{tick:g}</text>')
    for value, text in c.thresholds.get(key, ()):
        ty = y(value)
        out.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="{MUTED}" stroke-dasharray="5 3"/>'
                   f'<text x="{right + 4}" y="{ty + 4:.1f}" fill="{MUTED}">{escape(text)}</text>')
    for day, ref in c.infusions:
        px = x(day)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + PANEL}" stroke="{INFUSION}" '
                   f'stroke-dasharray="2 3"><title>MSC infusion {day} ({escape(ref)})</title></line>')
    product = {"hb": "rbc", "plt": "platelets"}.get(key)
    for day, given in c.transfusions:
        if given == product:
            px = x(day)
            out.append(f'<path d="M{px - 4:.1f},{top + PANEL - 9} L{px + 4:.1f},{top + PANEL - 9} L{px:.1f},{top + PANEL - 2} Z" '
                       f'fill="{EVENT}"><title>{escape(given)} transfusion {day}</title></path>')
    for name, day, panel in c.endpoints:
        if panel != key:
            continue
        px = x(day)
        near_end = px > right - 160
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + PANEL}" stroke="{EVENT}" '
                   f'stroke-dasharray="8 3 2 3" stroke-width="1.4"><title>{escape(name)}: {day} '
                   f'({msc_day(day, c.d1, c.transplant)})</title></line>'
                   f'<text x="{px + (-4 if near_end else 4):.1f}" y="{top + PANEL - 14}" fill="{EVENT}" {HALO} '
                   f'text-anchor="{"end" if near_end else "start"}">{escape(name)} {msc_day(day, c.d1, c.transplant)}</text>')
    if c.death is not None:
        px = x(c.death)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + PANEL}" stroke="{EVENT}" stroke-width="2.2">'
                   f'<title>death: {c.death} ({msc_day(c.death, c.d1, c.transplant)})</title></line>')
        if index == 1:
            near_end = px > WIDTH - RIGHT - 90
            out.append(f'<text x="{px + (-4 if near_end else 4):.1f}" y="{top + 12}" fill="{EVENT}" {HALO} '
                       f'text-anchor="{"end" if near_end else "start"}">† {c.death}</text>')
    if values:
        points = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in values)
        out.append(f'<polyline points="{points}" fill="none" stroke="{COLOURS[key]}" stroke-width="1.6"/>')
        for d, v in values:
            out.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="2.6" fill="{COLOURS[key]}">'
                       f'<title>{d} ({msc_day(d, c.d1, c.transplant)}): {v:g}</title></circle>')
    else:
        out.append(f'<text x="{(LEFT + right) / 2:.0f}" y="{top + PANEL / 2:.0f}" text-anchor="middle" '
                   f'fill="{MUTED}">no values recorded</text>')
    out.append("</g>")
    return out


def _legend(y: int) -> str:
    keys = [(f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{INFUSION}" stroke-dasharray="2 3"/>', "MSC infusion"),
            (f'<path d="M5,-9 L13,-9 L9,-2 Z" fill="{EVENT}"/>', "transfusion"),
            (f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{EVENT}" stroke-dasharray="8 3 2 3"/>', "endpoint date"),
            (f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{EVENT}" stroke-width="2.2"/>', "death"),
            (f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{MUTED}" stroke-dasharray="5 3"/>', "threshold")]
    out, x = [], float(WIDTH - RIGHT - 470)
    for mark, label in keys:
        out.append(f'<g transform="translate({x},{y})">{mark}<text x="22" y="0" fill="{EVENT}">{label}</text></g>')
        x += 30 + 6.2 * len(label)
    return "".join(out)


def _ticks(lo: int, hi: int) -> list[int]:
    span = hi - lo
    step = next(s for s in (7, 14, 28, 56, 91, 182, 364, 728) if span / s <= 14)
    start = math.ceil(lo / step) * step
    return list(range(start, hi + 1, step))


def _value_ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        candidates = [m * 10 ** e for e in range(-2, 4) for m in (1, 2, 5)]
        return [t for t in candidates if low <= math.log10(t) <= high]
    step = next(s for s in (5, 10, 20, 25, 50, 100) if (high - low) / s <= 6)
    return [float(t) for t in range(math.ceil(low / step) * step, int(high) + 1, step)]


def _describe(c: Course) -> str:
    parts = [f"{len(c.labs)} blood counts", f"{len(c.infusions)} MSC infusions", f"{len(c.transfusions)} transfusions"]
    parts += [f"{name} on {day}" for name, day, _ in c.endpoints]
    if c.death:
        parts.append(f"death on {c.death}")
    return "; ".join(parts)
