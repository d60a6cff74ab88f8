"""Enrolment over time: the cumulative number of enrolled patients, all sites and each site.

Input: ``enrolments``, one (site, enrolment date) per enrolled patient. Sites beyond the palette
are drawn together as "other sites".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta

from pgf_events.web.figures.svg import SERIES, Axes, Figure, attrs_of, count_ticks, el, legend, month_ticks_between

WIDTH, LEFT, RIGHT, TOP, PLOT_H = 760, 70, 730, 20, 260
TOTAL = ("#000000", "")
SITE_SERIES = SERIES[:4]


def _steps(days: Sequence[date]) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, d in enumerate(sorted(days), 1):
        xs.append(float(d.toordinal()))
        ys.append(float(i))
    return xs, ys


def enrolment_svg(enrolments: Sequence[tuple[str, date]], *, ident: str = "enrolment",
                  until: date | None = None) -> str:
    sites = [s for s, _ in Counter(site for site, _ in enrolments).most_common()]
    shown = sorted(sites[:len(SITE_SERIES)])
    groups: list[tuple[str, list[date]]] = [("all sites", [d for _, d in enrolments])]
    groups += [(s, [d for site, d in enrolments if site == s]) for s in shown]
    rest = [d for site, d in enrolments if site not in shown]
    if rest:
        groups.append((f"other sites ({len(sites) - len(shown)})", rest))
    per_site = ", ".join(f"{label} {len(days)}" for label, days in groups[1:])
    desc = (f"{len(enrolments)} patients enrolled" + (f" ({per_site})" if per_site else "")
            + (f", from {min(d for _, d in enrolments)} to {max(d for _, d in enrolments)}." if enrolments else "."))
    height = TOP + PLOT_H + 60 + 18 * len(groups)
    fig = Figure(ident, WIDTH, height, "Cumulative enrolment, all sites and by site", desc)
    first = min((d for _, d in enrolments), default=until or date.today()).replace(day=1)
    last = max([d for _, d in enrolments] + ([until] if until else []), default=first)
    last += timedelta(days=max(7, (last - first).days // 40))  # the last step shows as a step
    yticks = count_ticks(max(len(enrolments), 1))
    ticks = month_ticks_between(first, last)
    ax = Axes(fig, (LEFT, TOP, RIGHT, TOP + PLOT_H), (float(first.toordinal()), float(last.toordinal())),
              (0.0, yticks[-1]), xticks=[float(t.toordinal()) for t in ticks], yticks=yticks,
              xlabel="enrolment date", ylabel="patients enrolled (cumulative)",
              xfmt=lambda v: date.fromordinal(int(v)).strftime("%b %Y"), yfmt=lambda v: f"{v:.0f}")
    items = []
    for i, (label, days) in enumerate(groups):
        colour, dash = TOTAL if i == 0 else SITE_SERIES[(i - 1) % len(SITE_SERIES)]
        items.append((f"{label}: {len(days)}", colour, dash))
        if not days:
            continue
        xs, ys = _steps(days)
        g = fig.group(f"{label}: {len(days)} enrolled", ax.g, **{"class": "curve", "data-series": label})
        el(g, "path", d=ax.step_path([xs[0]] + xs, [0.0] + ys, float(last.toordinal())), **{"class": "line"},
           **attrs_of(colour, dash, stroke_width=3 if i == 0 else 2))
    if not enrolments:
        el(ax.g, "text", "nobody enrolled yet", x=(LEFT + RIGHT) / 2, y=TOP + PLOT_H / 2, text_anchor="middle")
    legend(fig, LEFT, TOP + PLOT_H + 62, items)
    return fig.render()
