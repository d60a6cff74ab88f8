"""The CONSORT flow diagram: one box per stage (screened → eligible → enrolled → treated →
evaluable) with its n, and beside each arrow a box with the patients who left there and why.

Input: ``steps``, a list of (label, n) from the first stage to the last, and ``exits``, one list of
text lines per arrow (``steps[i]`` → ``steps[i + 1]``; empty when nobody left there).
"""

from __future__ import annotations

from collections.abc import Sequence

from pgf_events.web.figures.svg import MUTED, TEXT, Figure, el

WIDTH = 760
MAIN_X, MAIN_W, BOX_H, GAP = 40, 300, 46, 56
SIDE_X, SIDE_W, LINE_H = 400, 330, 17


def consort_svg(steps: Sequence[tuple[str, int]], exits: Sequence[Sequence[str]], *, ident: str = "consort",
                note: str = "") -> str:
    if len(exits) != max(len(steps) - 1, 0):
        raise ValueError(f"{len(exits)} exit boxes for {len(steps)} stages")
    heights = [max(BOX_H, LINE_H * len(lines) + 14) if lines else 0 for lines in exits]
    gaps = [max(GAP, h + 20) for h in heights]
    height = 20 + BOX_H * len(steps) + sum(gaps) + (40 if note else 16)
    flow = "; ".join(f"{label} {n}" for label, n in steps)
    fig = Figure(ident, WIDTH, height, "CONSORT flow of patients", f"Patient flow: {flow}.")
    defs = el(fig.root, "defs")
    marker = el(defs, "marker", id=f"{fig.ident}-arrow", viewBox="0 0 10 10", refX=9, refY=5, markerWidth=7,
                markerHeight=7, orient="auto-start-reverse")
    el(marker, "path", d="M0 0L10 5L0 10z", fill=TEXT)
    arrow = f"url(#{fig.ident}-arrow)"
    y = 20.0
    centre = MAIN_X + MAIN_W / 2
    for i, (label, n) in enumerate(steps):
        box = fig.group(f"{label}: n = {n}", **{"class": "stage", "data-n": str(n), "data-label": label})
        el(box, "rect", x=MAIN_X, y=y, width=MAIN_W, height=BOX_H, rx=6, fill="#ffffff", stroke=TEXT,
           stroke_width=1.5)
        el(box, "text", label, x=centre, y=y + 19, text_anchor="middle", font_weight="bold")
        el(box, "text", f"n = {n}", x=centre, y=y + 37, text_anchor="middle")
        y += BOX_H
        if i == len(steps) - 1:
            break
        gap, lines = gaps[i], exits[i]
        el(fig.root, "line", x1=centre, x2=centre, y1=y, y2=y + gap - 2, stroke=TEXT, stroke_width=1.5,
           marker_end=arrow)
        if lines:
            h = heights[i]
            top = y + (gap - h) / 2
            side = fig.group(" ".join(lines), **{"class": "exit"})
            el(side, "line", x1=centre, x2=SIDE_X - 2, y1=top + h / 2, y2=top + h / 2, stroke=TEXT,
               stroke_width=1.5, marker_end=arrow)
            el(side, "rect", x=SIDE_X, y=top, width=SIDE_W, height=h, rx=6, fill="#ffffff", stroke=MUTED,
               stroke_width=1.2)
            for j, line in enumerate(lines):
                el(side, "text", line, x=SIDE_X + 10, y=top + 20 + LINE_H * j,
                   font_weight="bold" if j == 0 else "normal")
        y += gap
    if note:
        el(fig.root, "text", note, x=MAIN_X, y=y + 26, fill=MUTED)
    return fig.render()
