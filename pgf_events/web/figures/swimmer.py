"""The dosing swimmer plot: one lane per treated patient from MSC D1 to the last day of follow-up,
each dose marked by its timing (on time ●, early ◀, late ▶), death ✕ and withdrawal |.

Input: ``lanes``, each {subject, end (last follow-up MSC day), doses [(MSC day, status)], died,
withdrawn, optionally href: a link to the patient's page}; ``planned`` the planned dose days (dotted lines); ``limit`` the most lanes drawn (the
rest are named in a note: a 5,000-patient cohort is read in the dosing report, not as lanes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pgf_events.web.figures.svg import MUTED, TEXT, Axes, Figure, el, legend, nice_step, num

WIDTH, LEFT, RIGHT, TOP, LANE = 760, 90, 730, 20, 16
MARKS = {"on_time": ("#007A5A", "dose on time"), "early": ("#D55E00", "dose early"),
         "late": ("#0072B2", "dose late")}


def _marker(g: Any, status: str, x: float, y: float) -> None:
    colour = MARKS.get(status, (TEXT, status))[0]
    if status == "on_time":
        el(g, "circle", cx=x, cy=y, r=4.5, fill=colour, **{"class": f"dose {status}"})
    elif status in ("early", "late"):
        tip, back = (x - 5, x + 5) if status == "early" else (x + 5, x - 5)
        el(g, "path", d=f"M{num(tip)} {num(y)}L{num(back)} {num(y - 5)}L{num(back)} {num(y + 5)}Z", fill=colour,
           **{"class": f"dose {status}"})
    else:
        el(g, "rect", x=x - 4, y=y - 4, width=8, height=8, fill=colour, **{"class": f"dose {status}"})


def swimmer_svg(lanes: Sequence[Mapping[str, Any]], planned: Sequence[int], *, ident: str = "swimmer",
                limit: int = 120, xmax: int | None = None) -> str:
    shown = list(lanes)[:limit]
    doses = sum(len(lane["doses"]) for lane in lanes)
    desc = (f"{len(lanes)} treated patients, {doses} MSC doses: "
            + ", ".join(f"{sum(1 for lane in lanes for _, s in lane['doses'] if s == k)} {label.split()[1]}"
                        for k, (_, label) in MARKS.items())
            + f"; {sum(1 for lane in lanes if lane['died'])} died, "
            + f"{sum(1 for lane in lanes if lane['withdrawn'])} withdrew.")
    last = xmax or max([max(planned, default=1) + 14] + [lane["end"] or 1 for lane in shown])
    # lanes run to the axis end when follow-up goes on beyond it; death and withdrawal past it are not drawn
    plot_h = LANE * max(len(shown), 1) + 10
    height = TOP + plot_h + 60 + 18 * 5 + (20 if len(lanes) > limit else 0)
    fig = Figure(ident, WIDTH, height, "MSC dosing by patient (swimmer plot)", desc)
    step = nice_step(last, 6)
    ax = Axes(fig, (LEFT, TOP, RIGHT, TOP + plot_h), (0.0, float(last + 1)), (0.0, float(plot_h)),
              xticks=[1.0] + [step * i for i in range(1, int(last / step) + 1)], yticks=[],
              xlabel="MSC day (D1 = first infusion, no D0); dotted: planned dose days", ylabel="")
    for day in planned:
        el(ax.g, "line", x1=ax.x(day), x2=ax.x(day), y1=TOP, y2=TOP + plot_h, stroke=MUTED, stroke_width=1,
           stroke_dasharray="1 3", **{"class": "planned"})
    for i, lane in enumerate(shown):
        y = TOP + 10 + LANE * i
        end = min(lane["end"] or 1, last)
        g = fig.group(f"{lane['subject']}: {len(lane['doses'])} doses", ax.g,
                      **{"class": "lane", "data-subject": lane["subject"]})
        holder = el(g, "a", href=lane["href"]) if lane.get("href") else g  # the patient's page
        el(holder, "text", lane["subject"], x=LEFT - 8, y=y + 4, text_anchor="end", font_size=12)
        el(g, "line", x1=ax.x(1), x2=ax.x(end), y1=y, y2=y, stroke="#bdbdbd", stroke_width=6,
           **{"class": "follow-up"})
        for day, status in lane["doses"]:
            _marker(g, status, ax.x(day), y)
        if lane["died"] and (lane["end"] or 1) <= last:
            el(g, "path", d=f"M{num(ax.x(end) - 5)} {num(y - 5)}l10 10m0 -10l-10 10", stroke=TEXT, stroke_width=2,
               **{"class": "death"})
        elif lane["withdrawn"] and (lane["end"] or 1) <= last:
            el(g, "line", x1=ax.x(end), x2=ax.x(end), y1=y - 7, y2=y + 7, stroke=TEXT, stroke_width=3,
               **{"class": "withdrawal"})
    if not shown:
        el(ax.g, "text", "nobody treated yet", x=(LEFT + RIGHT) / 2, y=TOP + plot_h / 2 + 4, text_anchor="middle")
    below = TOP + plot_h + 62
    if len(lanes) > limit:
        el(fig.root, "text", f"The first {limit} of {len(lanes)} treated patients are shown; the dosing report lists "
           "every patient.", x=LEFT, y=below, fill=MUTED)
        below += 20
    key = fig.group("legend", **{"class": "legend"})
    for j, (status, (_, label)) in enumerate(MARKS.items()):
        _marker(key, status, LEFT + 8, below - 4 + 18 * j)
        el(key, "text", label, x=LEFT + 22, y=below + 18 * j)
    legend(fig, LEFT + 240, below, [("last day of follow-up", "#bdbdbd", "")])
    el(key, "text", "✕ death   | withdrawal", x=LEFT + 240, y=below + 18, fill=TEXT)
    return fig.render()
