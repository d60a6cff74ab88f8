"""Cohort figures from a report document: Kaplan–Meier curves with 95% CI bands, a month axis and
the numbers at risk (survival); cumulative incidence of the hemogram endpoints (endpoints); a dosing
swimmer plot (dosing); the CONSORT flow diagram (eligibility).

Every axis says which day numbering it uses. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from pgf_events.projections.curves import endpoint_incidence, km_curve
from pgf_events.projections.plot_files import save
from pgf_events.projections.plots import _pyplot
from pgf_events.protocol import Protocol

MONTH = 365.25 / 12


def _month_ticks(ax: Any, last_day: float, step_months: int = 3) -> list[float]:
    ticks = [m * MONTH for m in range(0, int(last_day / MONTH) + 2, step_months)]
    ticks = [t for t in ticks if t <= last_day + 1] or [0.0]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{round(t / MONTH)}" for t in ticks])
    return ticks


def plot_survival(path: str, report: Mapping[str, Any], params: Protocol) -> None:
    """OS and DFS Kaplan–Meier curves with 95% CI bands, censor ticks and a numbers-at-risk table."""
    plt = _pyplot()
    rows = [r for r in report["rows"] if r["enrolled"] and r["os_days"] is not None]
    curves = [("OS", "os", "#1f77b4"), ("DFS", "dfs", "#ff7f0e")]
    horizon = params.survival_horizon_days
    longest = max([horizon] + [r[f"{k}_days"] or 0 for r in rows for _, k, _ in curves])
    entry = [r.get("entry_days") or 0 for r in rows] if any(r.get("entry_days") for r in rows) else None
    fig, ax = plt.subplots(figsize=(9, 6.2))
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.32)
    for label, key, colour in curves:
        obs = [(r[f"{key}_days"], r[f"{key}_event"]) for r in rows if r[f"{key}_days"] is not None]
        c = km_curve(obs, entry if entry is None or len(obs) == len(rows) else None)
        end = float(max([t for t, _ in obs], default=0))
        times = c["time"] + [end]
        one = report["summary"].get(f"{key}_1y") or {}
        legend = label
        if one.get("estimate") is not None:
            legend += f": 1-year {one['estimate']:.0%}"
            if one.get("ci_low") is not None:
                legend += f" (95% CI {one['ci_low']:.0%}–{one['ci_high']:.0%})"
        ax.step(times, c["surv"] + c["surv"][-1:], where="post", color=colour, linewidth=1.8, label=legend)
        ax.fill_between(times, c["low"] + c["low"][-1:], c["high"] + c["high"][-1:], step="post", color=colour,
                        alpha=0.15, linewidth=0)
        ax.plot(c["censored"], c["censored_surv"], linestyle="none", marker="|", markersize=8, color=colour)
    ax.axvline(horizon, color="grey", linestyle="--", linewidth=0.9)
    ax.annotate(f"1 year (day {horizon})", xy=(horizon, 0.02), xycoords=("data", "axes fraction"),
                xytext=(-3, 0), textcoords="offset points", ha="right", fontsize=8, color="dimgrey")
    ax.set_xlim(0, longest)
    ax.set_ylim(0, 1.03)
    ticks = _month_ticks(ax, longest)
    origin = ("the first MSC infusion (MSC D1 = month 0)" if params.survival_origin == "first_infusion"
              else "transplant (day 0 = month 0)")
    ax.set_xlabel(f"months from {origin}")
    ax.set_ylabel("probability (shaded: 95% CI)")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="lower left", fontsize=9)
    ax.set_title(f"Overall and disease-free survival (n = {len(rows)}; | = censored)", fontsize=11)
    ax.text(-0.12, -0.2, "At risk", transform=ax.transAxes, fontsize=9, fontweight="bold", ha="left")
    for i, (label, key, colour) in enumerate(curves):
        y = -0.27 - 0.07 * i
        ax.text(-0.12, y, label, transform=ax.transAxes, fontsize=9, color=colour, ha="left")
        for t in ticks:
            n = sum(1 for r in rows if (r[f"{key}_days"] or 0) >= t)
            ax.text(t, y, str(n), transform=ax.get_xaxis_transform(), fontsize=9, ha="center", color=colour)
    _done(plt, fig, path)


ENDPOINTS = [("neutrophil engraftment", "anc", "#1f77b4"), ("red-cell recovery", "rbc", "#d62728"),
             ("platelet response (CR or PR)", "plt", "#2ca02c")]


def plot_incidence(path: str, report: Mapping[str, Any], params: Protocol) -> None:
    """Cumulative incidence of each hemogram endpoint over days since MSC D1.

    The curve reaches the report's rate k/n at its end: patients who died or withdrew before the
    endpoint count as not reaching it (competing events), as in the summary; n = evaluable patients.
    """
    plt = _pyplot()
    summary = report["summary"]
    rows = [r for r in report["rows"] if r["enrolled"]]
    last = max([params.nr_evaluation_day] + [r.get(f"{k}_days_since_msc_d1") or 0 for r in rows
                                             for _, k, _ in ENDPOINTS])
    fig, ax = plt.subplots(figsize=(9, 5.5), constrained_layout=True)
    for label, key, colour in ENDPOINTS:
        block = {"anc": summary.get("neutrophil_engraftment"), "rbc": summary.get("rbc_recovery"),
                 "plt": (summary.get("platelet_response") or {}).get("CR_or_PR")}[key] or {}
        n = block.get("n") or 0
        days = [r.get(f"{key}_days_since_msc_d1") for r in rows]
        if not n:
            continue
        steps = endpoint_incidence(days, n, last)
        k = sum(1 for d in days if d is not None)
        text = f"{label}: {k}/{n} = {k / n:.0%}"
        ax.step(steps["time"], steps["inc"], where="post", color=colour, linewidth=1.8, label=text)
    ax.axvline(params.nr_evaluation_day, color="grey", linestyle="--", linewidth=0.9)
    ax.annotate(f"platelet evaluation day {params.nr_evaluation_day}", xy=(params.nr_evaluation_day, 0.98),
                xycoords=("data", "axes fraction"), xytext=(-3, 0), textcoords="offset points", ha="right",
                va="top", fontsize=8, color="dimgrey")
    ax.set_xlim(0, last)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("days since MSC D1 (first infusion = day 0, i.e. MSC D1)")
    ax.set_ylabel("cumulative incidence")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="upper left", fontsize=9)
    ax.set_title(f"Hemogram endpoints (n = {len(rows)} enrolled; death and withdrawal as competing events)",
                 fontsize=11)
    _done(plt, fig, path)


MARKERS = {"on_time": ("o", "#2ca02c", "dose on time"), "early": ("<", "#ff7f0e", "dose early"),
           "late": (">", "#d62728", "dose late")}


def plot_swimmer(path: str, report: Mapping[str, Any], params: Protocol) -> None:
    """One lane per treated patient: MSC doses (on time, early, late) on MSC D-numbers, to the last
    follow-up day; a cross for death, a bar end for withdrawal."""
    plt = _pyplot()
    rows = [r for r in report["rows"] if r["enrolled"] and r.get("msc_d1")]
    rows.sort(key=lambda r: r["subject"], reverse=True)
    horizon = (params.planned_doses - 1) * params.dose_interval_days + params.dose_window_days + 14
    last = max([horizon] + [min(r.get("last_msc_day") or 0, horizon) for r in rows])
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.16 * len(rows) + 1.5)), constrained_layout=True)
    seen: set[str] = set()
    for y, r in enumerate(rows):
        end = min(r.get("last_msc_day") or 1, last)
        ax.plot([1, end], [y, y], color="lightgrey", linewidth=3, solid_capstyle="butt", zorder=1)
        for day, status in zip(r.get("dose_msc_days") or [], r.get("dose_statuses") or [], strict=False):
            marker, colour, label = MARKERS.get(status, ("s", "black", status))
            ax.plot([day], [y], marker=marker, color=colour, markersize=5, linestyle="none", zorder=2,
                    label=None if label in seen else label)
            seen.add(label)
        if r.get("died") and (r.get("last_msc_day") or 0) <= last:
            ax.plot([end], [y], marker="x", color="black", markersize=6, linestyle="none", zorder=3,
                    label=None if "death" in seen else "death")
            seen.add("death")
    for k in range(params.planned_doses):
        ax.axvline(1 + k * params.dose_interval_days, color="grey", linewidth=0.6, linestyle=":")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["subject"] for r in rows], fontsize=6 if len(rows) > 40 else 8)
    ax.set_ylim(-1, len(rows))
    ax.set_xlim(0, last + 1)
    ax.set_xlabel("MSC day (D1 = first infusion, no D0); dotted: planned dose days")
    ax.legend(loc="upper right", fontsize=8, frameon=True)
    ax.set_title(f"MSC dosing, {len(rows)} treated patients (protocol {report['protocol_version']})", fontsize=11)
    _done(plt, fig, path)


def plot_consort(path: str, report: Mapping[str, Any], params: Protocol) -> None:
    """The CONSORT flow: registered, screened, excluded (by criterion), enrolled, treated, completed."""
    plt = _pyplot()
    s = report["summary"]
    criteria = ", ".join(f"{c} {n}" for c, n in sorted((s.get("ineligible_criteria") or {}).items()))
    boxes = [
        (0.5, 0.92, f"Registered (n = {s['registered']})"),
        (0.5, 0.77, f"Screened (n = {s['screened']})"),
        (0.5, 0.62, f"Eligible (n = {s['eligible']})"),
        (0.5, 0.47, f"Enrolled (n = {s['enrolled']})"),
        (0.5, 0.32, f"Treated with MSC (n = {s['treated']})"),
        (0.5, 0.12, f"Completed {params.planned_doses} doses (n = {s['completed']})"),
    ]
    side = [
        (0.64, 0.695, f"Not eligible (n = {s['ineligible']})" + (f"\n{criteria}" if criteria else "")
         + (f"\npending screening {s['pending']}" if s.get("pending") else "")),
        (0.64, 0.22, f"Withdrawn (n = {s['withdrawn']})\nDied (n = {s['died']})\n(at any time)"),
    ]
    fig, ax = plt.subplots(figsize=(9, 7.5))
    ax.set_axis_off()
    style = {"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": "black"}
    for x, y, text in boxes:
        ax.text(x, y, text, ha="center", va="center", fontsize=10, bbox=style, transform=ax.transAxes)
    for x, y, text in side:
        ax.text(x, y, text, ha="left", va="center", fontsize=10, bbox=style, transform=ax.transAxes)
    for (x0, y0, _), (x1, y1, _) in itertools.pairwise(boxes):
        ax.annotate("", xy=(x1, y1 + 0.04), xytext=(x0, y0 - 0.04), xycoords="axes fraction",
                    arrowprops={"arrowstyle": "->"})
    for x, y, _ in side:  # from the main column to each side box
        ax.annotate("", xy=(x - 0.015, y), xytext=(0.5, y), xycoords="axes fraction",
                    arrowprops={"arrowstyle": "->"})
    ax.set_title(f"CONSORT flow ({report['protocol_version']}"
                 + (f", as of {report['as_of']}" if report.get("as_of") else "") + ")", fontsize=11)
    _done(plt, fig, path)


def _done(plt: Any, fig: Any, path: str) -> None:
    try:
        save(fig, path)
    finally:
        plt.close(fig)
