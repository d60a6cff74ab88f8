"""A patient's hemogram course as a figure (the cohort figures are in :mod:`.cohort_plots`).

matplotlib is an optional extra (``pip install 'pgf-events[plot]'``), imported only when a plot is
asked for; without it the command fails with one clear line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.errors import PgfError
from pgf_events.domain.patient import Patient
from pgf_events.projections.plot_files import save
from pgf_events.protocol import Protocol

MISSING = "plotting needs matplotlib: pip install 'pgf-events[plot]'"
ANC_FLOOR, PLT_FLOOR = 0.01, 1.0  # log axes cannot show 0: values below are drawn at the floor


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise PgfError(MISSING) from None
    return plt


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


LOG_TICKS = {"anc": (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20), "plt": (2, 5, 10, 20, 50, 100, 200, 500, 1000)}


def _compressed_axis(first: float, last: float, detail_until: float) -> tuple[Any, Any]:
    """An x scale linear up to ``detail_until`` and compressed after it (late follow-up is monthly)."""
    early, late = max(detail_until - first, 1.0), max(last - detail_until, 0.0)
    k = max(1.0, late / (0.5 * early))  # the late part takes about a third of the width

    def forward(x: Any) -> Any:
        import numpy as np  # noqa: PLC0415 - numpy comes with matplotlib

        x = np.asarray(x, dtype=float)
        return np.where(x <= detail_until, x, detail_until + (x - detail_until) / k)

    def inverse(y: Any) -> Any:
        import numpy as np  # noqa: PLC0415

        y = np.asarray(y, dtype=float)
        return np.where(y <= detail_until, y, detail_until + (y - detail_until) * k)

    return forward, inverse


def plot_status(path: str, patient: Patient, status: Mapping[str, Any], params: Protocol) -> None:
    """ANC / Hb / PLT over time in three stacked panels, with infusions, transfusions and endpoints.

    x = days from MSC D1 (from the transplant before any infusion), linear over the treatment and
    endpoint period and compressed over later follow-up.
    """
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: PLC0415

    endpoints = status["endpoints"]
    d1 = _day(endpoints.get("msc_d1"))
    origin = d1 or date.fromisoformat(status["transplant_date"])
    transplant = date.fromisoformat(status["transplant_date"])
    x_label = "days since MSC D1 (D1 = 0)" if d1 else "days from transplant (day 0)"

    def x(day: date) -> int:
        return (day - origin).days

    def named(day: date) -> str:
        """Both day numbers (v2): the MSC D-number (D1 = first infusion, no D0) and day post-transplant."""
        post = f"day +{(day - transplant).days} post-transplant"
        if d1 is None:
            return post
        n = (day - d1).days
        return f"MSC D{n + 1 if n >= 0 else n}, {post}"

    labs = sorted(((r.date, r) for _, r in patient.active(vo.LabPanel)), key=lambda item: item[0])  # same-day labs
    infusions = sorted(r.date for _, r in patient.active(vo.Infusion))
    transfusions = sorted((r.date, r.product) for _, r in patient.active(vo.Transfusion))
    panels = [
        ("anc", "ANC (10$^9$/L)", "log", [(params.anc_threshold, f"{params.anc_comparator} {params.anc_threshold:g}")],
         "neutrophil_engraftment_date", "neutrophil engraftment", None, "#1f77b4"),
        ("hb", "Hb (g/L)", "linear", [(params.hb_threshold, f"≥ {params.hb_threshold:g}")],
         "rbc_recovery_date", "red-cell recovery", "rbc", "#d62728"),
        ("plt", "PLT (10$^9$/L)", "log", [(params.plt_pr_threshold, f"PR ≥ {params.plt_pr_threshold:g}"),
                                          (params.plt_cr_threshold, f"CR ≥ {params.plt_cr_threshold:g}")],
         "platelet_response_date", f"platelet {endpoints.get('platelet_response') or 'response'}", "platelets",
         "#2ca02c"),
    ]
    days = [x(d) for d, _ in labs] + [x(d) for d in infusions] + [x(d) for d, _ in transfusions]
    days += [0, x(date.fromisoformat(status["evaluation_date"]))]
    first, last = min(days) - 2, max(days) + 3
    reached = [x(d) for key in ("neutrophil_engraftment_date", "rbc_recovery_date", "platelet_response_date")
               if (d := _day(endpoints.get(key)))]
    detail = max([params.nr_evaluation_day + 14, *[r + 14 for r in reached]])
    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True, constrained_layout=True)
    for ax, (field, label, scale, thresholds, end_key, end_label, product, colour) in zip(axes, panels, strict=True):
        floor = ANC_FLOOR if field == "anc" else PLT_FLOOR
        points = [(x(d), getattr(r, field)) for d, r in labs if getattr(r, field) is not None]
        values = [max(v, floor) if scale == "log" else v for _, v in points]
        if points:
            ax.plot([t for t, _ in points], values, "-o", color=colour, markersize=3, linewidth=1.2, label=label)
        else:
            ax.text(0.5, 0.72, f"no {label.split(' (')[0]} values recorded", transform=ax.transAxes, ha="center",
                    va="center", color="dimgrey", fontsize=10)
        ax.set_yscale(scale)
        if scale == "log":
            low, high = min(values + [t for t, _ in thresholds]), max(values + [t for t, _ in thresholds])
            ax.set_ylim(low / 1.6, high * 1.6)
            ax.yaxis.set_major_locator(FixedLocator([t for t in LOG_TICKS[field] if low / 1.6 <= t <= high * 1.6]))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.25)
        for i, (value, text) in enumerate(thresholds):
            ax.axhline(value, color="grey", linestyle="--" if i == 0 else (0, (5, 2, 1, 2)), linewidth=0.9,
                       label=f"threshold {text}")
        for i, d in enumerate(infusions):
            ax.axvline(x(d), color="#9467bd", alpha=0.6, linewidth=1.2, linestyle=":",
                       label="MSC infusion" if i == 0 else None)
        if product:
            given = [x(d) for d, p in transfusions if p == product]
            if given:
                name = "RBC" if product == "rbc" else "platelet"
                ax.plot(given, [0.03] * len(given), marker="v", linestyle="none", color="black", markersize=5,
                        alpha=0.7, transform=ax.get_xaxis_transform(), label=f"{name} transfusion")
        when = _day(endpoints.get(end_key))
        if when:
            ax.axvline(x(when), color="black", linestyle="-.", linewidth=1.3,
                       label=f"{end_label}: {when} ({named(when)})")
        nr = endpoints.get("platelet") if field == "plt" and endpoints.get("platelet_response") == "NR" else None
        if nr:
            ax.axvline(x(date.fromisoformat(nr["date"])), color="black", linestyle=":", linewidth=1.3,
                       label=f"platelet NR: {nr['date']} ({named(date.fromisoformat(nr['date']))})")
        death = _day(status.get("death_date"))
        if death and field == "anc":
            ax.axvline(x(death), color="black", linewidth=1.6, label=f"death: {death} ({named(death)})")
        elif death:
            ax.axvline(x(death), color="black", linewidth=1.6)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    bottom = axes[-1]
    if last > detail + 60:  # compress only a long later follow-up
        forward, inverse = _compressed_axis(first, last, detail)
        bottom.set_xscale("function", functions=(forward, inverse))
        for ax in axes:
            ax.axvspan(detail, last, color="grey", alpha=0.06, linewidth=0)
        axes[0].annotate("later follow-up, compressed scale", xy=(detail, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(4, -12), textcoords="offset points", fontsize=7.5, color="dimgrey")
        early_ticks = list(range(0, int(detail) + 1, 7 if detail <= 98 else 14))
        late_ticks = list(range(int(detail) + 60 - int(detail) % 30, int(last) + 1, 60 if last - detail < 400 else 90))
        bottom.xaxis.set_major_locator(FixedLocator([t for t in early_ticks + late_ticks if first <= t <= last]))
    bottom.set_xlim(first, last)
    bottom.set_xlabel(x_label + (f" ({origin})" if d1 else ""))
    title = f"{status['subject']}: hemogram course"
    title += f" (as of {status['as_of']})" if status.get("as_of") else f" (data to {status['evaluation_date']})"
    fig.suptitle(f"{title}, protocol {status['protocol_version']}", fontsize=11)
    try:
        save(fig, path)
    finally:
        plt.close(fig)
