"""Proportions with their 95% confidence intervals, one line each (forest style), on 0–100%.

Input: ``items``, each {label, k, n, estimate, ci_low, ci_high} as the reports' rates (Wilson CI)
or the Kaplan–Meier estimates at a horizon (``k``/``n`` may be None there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pgf_events.web.figures.svg import MUTED, SERIES, TEXT, Axes, Figure, el, pct

WIDTH, LEFT, RIGHT, ROW = 760, 270, 560, 34


def interval_text(item: Mapping[str, Any]) -> str:
    counts = f"{item['k']}/{item['n']} " if item.get("n") is not None and item.get("k") is not None else ""
    if item.get("estimate") is None:
        return f"{counts}not estimable".strip()
    ci = f" ({pct(item['ci_low'])}–{pct(item['ci_high'])})" if item.get("ci_low") is not None else ""
    return f"{counts}{pct(item['estimate'])}{ci}"


def forest_svg(items: Sequence[Mapping[str, Any]], *, ident: str = "endpoints",
               title: str = "Primary and key secondary endpoints with 95% confidence intervals") -> str:
    top = 30
    height = top + ROW * max(len(items), 1) + 60
    desc = "; ".join(f"{i['label']}: {interval_text(i)}" for i in items) or "No endpoint can be estimated yet."
    fig = Figure(ident, WIDTH, height, title, desc + ".")
    bottom = top + ROW * max(len(items), 1)
    ax = Axes(fig, (LEFT, top, RIGHT, bottom), (0.0, 1.0), (0.0, float(max(len(items), 1))),
              xticks=[0, 0.25, 0.5, 0.75, 1.0], yticks=[], xlabel="proportion (point: estimate; bar: 95% CI)",
              ylabel="", xfmt=lambda v: f"{v:.0%}")
    el(fig.root, "text", "estimate (95% CI)", x=RIGHT + 14, y=top - 10, fill=MUTED, font_weight="bold")
    colour = SERIES[0][0]
    for i, item in enumerate(items):
        y = top + ROW * i + ROW / 2
        g = fig.group(f"{item['label']}: {interval_text(item)}", ax.g, **{"class": "estimate",
                                                                           "data-label": item["label"]})
        el(g, "text", item["label"], x=LEFT - 10, y=y + 4, text_anchor="end", fill=TEXT)
        if item.get("ci_low") is not None and item.get("ci_high") is not None:
            el(g, "line", x1=ax.x(item["ci_low"]), x2=ax.x(item["ci_high"]), y1=y, y2=y, stroke=colour,
               stroke_width=2.5, **{"class": "ci"})
            for end in (item["ci_low"], item["ci_high"]):
                el(g, "line", x1=ax.x(end), x2=ax.x(end), y1=y - 6, y2=y + 6, stroke=colour, stroke_width=2)
        if item.get("estimate") is not None:
            el(g, "rect", x=ax.x(item["estimate"]) - 5, y=y - 5, width=10, height=10, fill=TEXT,
               **{"class": "point"})
        el(g, "text", interval_text(item), x=RIGHT + 14, y=y + 4)
    return fig.render()
