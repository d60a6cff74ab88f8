"""The cohort dashboard's figures from the projections' rows (slices): each report is built by
:func:`pgf_events.projections.cohort.build_report` (the numbers ``pgf report`` prints), each curve by
:mod:`pgf_events.projections.curves` from the very observations the report's estimator reads, and
each figure is rendered by :mod:`pgf_events.web.figures`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pgf_events.projections import curves
from pgf_events.projections.cohort import build_report, survival_observations
from pgf_events.projections.sections import SECTIONS
from pgf_events.projections.stats import Row
from pgf_events.protocol import Protocol
from pgf_events.web.figures.curves import curves_figure, km_desc
from pgf_events.web.figures.enrolment import enrolment_svg
from pgf_events.web.figures.flow import consort_svg
from pgf_events.web.figures.forest import forest_svg, interval_text
from pgf_events.web.figures.safety import safety_html
from pgf_events.web.figures.svg import month_ticks, pct
from pgf_events.web.figures.swimmer import swimmer_svg

REPORTS = ("eligibility", "dosing", "endpoints", "safety", "gvhd", "infections", "survival")
ROWS_DRAWN = ("eligibility", "dosing")  # enrolment dates and sites; swimmer lanes


def _subject(row: Row) -> str:
    return str(row["subject"])


def _estimate_note(e: Mapping[str, Any], horizon: int) -> str:
    if e.get("estimate") is None:
        return "no estimate"
    ci = f" (95% CI {pct(e['ci_low'])}–{pct(e['ci_high'])})" if e.get("ci_low") is not None else ""
    return f"{pct(e['estimate'])} at day {horizon}{ci}, {e['events']} events"


def consort(elig: Mapping[str, Any], endpoints: Mapping[str, Any]) -> tuple[list[tuple[str, int]], list[list[str]]]:
    """CONSORT stages and, per arrow, who left there and why (from the eligibility and endpoint reports)."""
    criteria = ", ".join(f"{c} {n}" for c, n in (elig.get("ineligible_criteria") or {}).items())
    steps = [("Registered", elig["registered"]), ("Screened", elig["screened"]), ("Eligible", elig["eligible"]),
             ("Enrolled", elig["enrolled"]), ("Treated with MSC", elig["treated"]),
             ("Evaluable for the endpoints", endpoints["evaluable"])]
    counts = [n for _, n in steps]
    gone = [a - b for a, b in itertools.pairwise(counts)]
    incomplete = elig.get("pending", 0) - gone[0]  # pending counts the patients not yet screened too
    failed = [f"Not eligible (n = {elig['ineligible']})"] + ([f"unmet: {criteria}"] if criteria else [])
    exits = [
        [f"Not yet screened (n = {gone[0]})"] if gone[0] > 0 else [],
        (failed if elig["ineligible"] else [])
        + ([f"Screening incomplete (n = {incomplete})"] if incomplete > 0 else []),
        [f"Eligible, not enrolled (n = {gone[2]})"] if gone[2] > 0 else [],
        [f"Enrolled, not treated (n = {gone[3]})"] if gone[3] > 0 else [],
        [f"Treated, no endpoint anchor date (n = {gone[4]})"] if gone[4] > 0 else [],
    ]
    return steps, exits


def forest_items(endpoints: Mapping[str, Any], survival: Mapping[str, Any]) -> list[dict[str, Any]]:
    plt = endpoints["platelet_response"]
    items = [{"label": "Neutrophil engraftment", **endpoints["neutrophil_engraftment"]},
             {"label": "Red-cell recovery", **endpoints["rbc_recovery"]},
             {"label": "Platelet response (CR or PR)", **plt["CR_or_PR"]},
             {"label": "Platelet CR", **plt["CR"]}, {"label": "Platelet PR", **plt["PR"]}]
    h = survival["horizon_days"]
    for key, label in (("os_1y", "Overall survival"), ("dfs_1y", "Disease-free survival")):
        e = survival[key]
        items.append({"label": f"{label} at day {h} (KM)", "k": None, "n": e["n"], "estimate": e["estimate"],
                      "ci_low": e["ci_low"], "ci_high": e["ci_high"]})
    return items


def _km(label: str, obs: Sequence[Mapping[str, Any]], ticks: Sequence[float], note: str) -> dict[str, Any]:
    pairs, entry = curves.observations(obs)
    c = curves.km_curve(pairs, entry)
    return {"label": label, "time": c["time"], "value": c["surv"], "low": c["low"], "high": c["high"],
            "end": max([t for t, _ in pairs], default=0.0), "at_risk": curves.at_risk(pairs, entry, ticks),
            "censored": list(zip(c["censored"], c["censored_surv"], strict=True)), "note": note}


def _aj(label: str, obs: Sequence[Mapping[str, Any]], ticks: Sequence[float], note: str) -> dict[str, Any]:
    pairs, entry = curves.observations(obs)
    c = curves.aj_curve(pairs, entry)
    return {"label": label, "time": c["time"], "value": c["inc"], "low": c["low"], "high": c["high"],
            "end": max([t for t, _ in pairs], default=0.0), "at_risk": curves.at_risk(pairs, entry, ticks),
            "censored": [], "note": note}


def _longest(obs: Sequence[Sequence[Mapping[str, Any]]], horizon: int) -> float:
    return float(max([horizon] + [o["time"] for group in obs for o in group]))


def ticks_with_horizon(last: float, horizon: int) -> list[float]:
    """Month ticks, the one nearest the horizon moved onto it: that at-risk column is the report's."""
    ticks = month_ticks(last)
    near = min(range(len(ticks)), key=lambda i: abs(ticks[i] - horizon))
    if abs(ticks[near] - horizon) <= 2:
        ticks[near] = float(horizon)
    return ticks


def survival_svg(rows: Sequence[Row], summary: Mapping[str, Any]) -> str:
    h = summary["horizon_days"]
    os_, dfs = survival_observations(rows, "os"), survival_observations(rows, "dfs")
    last = _longest([os_, dfs], h)
    ticks = ticks_with_horizon(last, h)
    shown = [_km("OS", os_, ticks, _estimate_note(summary["os_1y"], h)),
             _km("DFS", dfs, ticks, _estimate_note(summary["dfs_1y"], h))]
    shown = [c for c in shown if len(c["at_risk"]) and (c["at_risk"][0] or len(c["time"]) > 1)] if os_ else []
    return curves_figure("km", "Kaplan–Meier overall and disease-free survival with 95% CI bands",
                         km_desc("Overall and disease-free survival", len(os_), shown), shown, ticks=ticks,
                         xmax=last, xlabel=f"months {summary['label']} (| censored)",
                         ylabel="probability (band: 95% CI)", marker=(h, f"day {h}"))


def incidence_svg(slices: Mapping[str, Sequence[Row]], reports: Mapping[str, Mapping[str, Any]]) -> str:
    """Relapse, acute GVHD II–IV, chronic GVHD and first infection, death competing (Aalen–Johansen)."""
    surv, gvhd, inf = (reports[n]["summary"] for n in ("survival", "gvhd", "infections"))
    h = surv["horizon_days"]
    enrolled_gvhd = [s["gvhd"] for s in slices["gvhd"] if s["enrolled"]]
    at_risk_inf = [s["infection_followup"] for s in slices["infections"]
                   if s["enrolled"] and s["infection_followup"]["origin_date"]]
    groups = [
        ("Relapse", survival_observations(slices["survival"], "relapse"), surv["relapse_1y"]),
        ("Acute GVHD II–IV", [g["acute_2_4_incidence"] for g in enrolled_gvhd if g["acute_2_4_incidence"]],
         gvhd["acute_2_4_cumulative_incidence"]),
        ("Chronic GVHD", [g["chronic_incidence"] for g in enrolled_gvhd if g["chronic_incidence"]],
         gvhd["chronic_cumulative_incidence"]),
        ("First infection", [f["incidence"] for f in at_risk_inf if f["incidence"]], inf["cumulative_incidence"]),
    ]
    last = _longest([g[1] for g in groups], h)
    ticks = ticks_with_horizon(last, h)
    shown = [_aj(label, obs, ticks, _estimate_note(est, h)) for label, obs, est in groups if obs]
    top = max([v for c in shown for v in c["high"]] + [0.0])
    ymax = next(y for y in (0.25, 0.5, 0.75, 1.0) if top <= y)
    desc = "Cumulative incidence with death as a competing event. " + (
        "; ".join(f"{c['label']}: {c['note']}" for c in shown) + "." if shown else "No patient at risk yet.")
    return curves_figure("incidence", "Cumulative incidence (Aalen–Johansen, death competing) with 95% CI bands",
                         desc, shown, ticks=ticks, xmax=last, xlabel=f"months {surv['label']}",
                         ylabel="cumulative incidence (band: 95% CI)", ymax=ymax, marker=(h, f"day {h}"))


def swimmer_lanes(rows: Sequence[Mapping[str, Any]],
                  patient_href: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """Lanes from the dosing report's rows (each dose and the last follow-up day as MSC days)."""
    return [{"subject": r["subject"], "end": r.get("last_msc_day"),
             "href": patient_href(r["subject"]) if patient_href else None,
             "doses": list(zip(r.get("dose_msc_days") or [], r.get("dose_statuses") or [], strict=False)),
             "died": bool(r.get("died")), "withdrawn": bool(r.get("withdrawn"))}
            for r in rows if r["enrolled"] and r.get("msc_d1")]


def dashboard_figures(slices: Mapping[str, Sequence[Row]], params: Protocol, *, as_of: datetime | None = None,
                      cutoff: date | None = None,
                      patient_href: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Every figure of the dashboard (SVG or HTML strings) and the reports' summaries they show."""
    # rows are drawn from two reports only; the others give their summary (what build_report computes)
    reports: dict[str, dict[str, Any]] = {
        n: build_report(n, slices[n], params, as_of=as_of, cutoff=cutoff) if n in ROWS_DRAWN
        else {"summary": SECTIONS[n].summary(sorted(slices[n], key=_subject), params)} for n in REPORTS}
    elig, end, surv = (reports[n]["summary"] for n in ("eligibility", "endpoints", "survival"))
    steps, exits = consort(elig, end)
    enrolments = [(r["site"], date.fromisoformat(r["enrolment_date"])) for r in reports["eligibility"]["rows"]
                  if r["enrolled"] and r["enrolment_date"]]
    planned = [1 + k * params.dose_interval_days for k in range(params.planned_doses)]
    course = (params.planned_doses - 1) * params.dose_interval_days + params.dose_window_days + 14
    items = forest_items(end, surv)
    return {
        "summaries": {n: r["summary"] for n, r in reports.items()},
        "consort": consort_svg(steps, exits, note=f"After enrolment: {elig['withdrawn']} withdrew, "
                               f"{elig['died']} died (at any time)."),
        "enrolment": enrolment_svg(enrolments, until=cutoff),
        "forest": forest_svg(items), "forest_items": [(i["label"], interval_text(i)) for i in items],
        "survival": survival_svg(slices["survival"], surv),
        "incidence": incidence_svg(slices, reports),
        "swimmer": swimmer_svg(swimmer_lanes(reports["dosing"]["rows"], patient_href), planned, xmax=course),
        "safety": safety_html(reports["safety"]["summary"], patient_href),
    }
