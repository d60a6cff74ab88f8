"""Step-curve figures: Kaplan–Meier OS/DFS and Aalen–Johansen cumulative incidences, each with its
95% band, censoring marks and a numbers-at-risk table under the month axis.

Input per curve (plain data, from :mod:`pgf_events.projections.curves`): ``label``; ``time`` and
``value`` (the step points, time 0 first); ``low``/``high`` (the band, same times); ``end`` (last
follow-up, where the line stops); ``censored`` ((time, value) marks); ``at_risk`` (one count per
tick); ``note`` (the report's estimate at the horizon, for the legend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pgf_events.web.figures.svg import MONTH, MUTED, Axes, Figure, attrs_of, el, legend, num, series

WIDTH = 760
LEFT, RIGHT, TOP = 180, 730, 20


def curves_figure(ident: str, title: str, desc: str, curves: Sequence[Mapping[str, Any]], *,
                  ticks: Sequence[float], xmax: float, xlabel: str, ylabel: str, ymax: float = 1.0,
                  marker: tuple[float, str] | None = None) -> str:
    """The figure: curves over ``[0, xmax]`` days (month labels at ``ticks``), 0..``ymax`` upwards,
    a dashed reference line at ``marker`` (day, label), the legend, and the at-risk table."""
    plot_h = 300
    legend_h = 18 * len(curves) + 8
    table_h = 22 * (len(curves) + 1) + 8 if curves else 0
    height = TOP + plot_h + 50 + legend_h + table_h
    fig = Figure(ident, WIDTH, height, title, desc)
    ax = Axes(fig, (LEFT, TOP, RIGHT, TOP + plot_h), (0.0, max(xmax, 1.0)), (0.0, ymax), xticks=ticks,
              yticks=[ymax * i / 4 for i in range(5)], xlabel=xlabel, ylabel=ylabel,
              xfmt=lambda t: f"{round(t / MONTH)}", yfmt=lambda v: f"{v:.0%}")
    if marker is not None and marker[0] <= xmax:
        day, label = marker
        ref = fig.group(label, ax.g)
        el(ref, "line", x1=ax.x(day), x2=ax.x(day), y1=TOP, y2=TOP + plot_h, stroke=MUTED, stroke_width=1,
           stroke_dasharray="4 3")
        el(ref, "text", label, x=ax.x(day) - 4, y=TOP + 14, text_anchor="end", fill=MUTED, font_size=12)
    if not curves:
        el(ax.g, "text", "no patients to show", x=(LEFT + RIGHT) / 2, y=TOP + plot_h / 2, text_anchor="middle",
           fill=MUTED)
    for i, c in enumerate(curves):
        colour, dash = series(i)
        g = fig.group(f"{c['label']} curve", ax.g, **{"class": "curve", "data-series": c["label"]})
        if len(c["time"]) > 1:
            el(g, "path", d=ax.step_band(c["time"], c["low"], c["high"], c["end"]), **{
                "class": "band", "fill": colour, "fill-opacity": "0.15", "stroke": "none"})
        el(g, "path", None, d=ax.step_path(c["time"], c["value"], c["end"]), **{"class": "line"},
           **attrs_of(colour, dash, stroke_width=2.2))
        marks = sorted({(float(t), float(v)) for t, v in c.get("censored") or []})
        if marks:
            ticks_d = "".join(f"M{num(ax.x(t))} {num(ax.y(v) - 5)}v10" for t, v in marks)
            el(g, "path", d=ticks_d, stroke=colour, stroke_width=1.5, **{"class": "censored"})
    bottom = TOP + plot_h + 62
    items = [(f"{c['label']}{': ' + c['note'] if c.get('note') else ''}", *series(i)) for i, c in enumerate(curves)]
    y = legend(fig, LEFT, bottom, items)
    if curves:
        table = fig.group("numbers at risk", **{"class": "at-risk"})
        el(table, "text", "Number at risk (month)", x=10, y=y + 6, font_weight="bold")
        for i, c in enumerate(curves):
            row_y = y + 28 + 22 * i
            el(table, "line", x1=10, x2=28, y1=row_y - 4, y2=row_y - 4, **attrs_of(*series(i), stroke_width=3))
            el(table, "text", c["label"], x=34, y=row_y, font_weight="bold")
            for t, n in zip(ticks, c["at_risk"], strict=True):
                el(table, "text", str(n), x=ax.x(t), y=row_y, text_anchor="middle", **{"data-day": num(t)})
    return fig.render()


def km_desc(name: str, n: int, curves: Sequence[Mapping[str, Any]]) -> str:
    parts = [f"{c['label']}: {c['note']}" for c in curves if c.get("note")]
    return f"{name} of {n} patients. " + ("; ".join(parts) + "." if parts else "No estimate yet.")
