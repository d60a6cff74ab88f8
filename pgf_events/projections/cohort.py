"""Cohort reports: pure functions over the patients' projection slices (or their PatientStates).

Each report is one row per subject plus a cohort summary. The input is what the projection
tables hold (:func:`pgf_events.projections.slices.slice_state`), so a report read from the tables
and one computed from the log ``--as-of`` a time run exactly the same code. Populations: CONSORT
counts from everyone registered; dosing, endpoints, GVHD, infections and survival over enrolled
patients (endpoints and time-to-event analyses need their anchor/origin date, i.e. a first
infusion under the default protocol); safety over everyone with an adverse event on record.
Proportions carry a Wilson 95% CI; 1-year OS/DFS are Kaplan–Meier with Greenwood log-log CIs;
incidences are Aalen–Johansen with death competing.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pgf_events.domain.rules.eligibility import ALL_CRITERIA
from pgf_events.domain.rules.stats import wilson_ci
from pgf_events.domain.rules.survival import aalen_johansen, kaplan_meier
from pgf_events.projections.derive import PatientState, iso
from pgf_events.projections.slices import PROJECTIONS, slice_state
from pgf_events.protocol import Protocol

Row = Mapping[str, Any]
REPORTS = PROJECTIONS


def rate(k: int, n: int) -> dict[str, Any]:
    ci = wilson_ci(k, n)
    return {"k": k, "n": n, "estimate": ci.estimate if ci else None,
            "ci_low": ci.ci_low if ci else None, "ci_high": ci.ci_high if ci else None}


def _summary_stats(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    return {"n": len(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "min": min(values), "max": max(values)}


def _entry(obs: Sequence[Mapping[str, Any]]) -> list[float] | None:
    """Delayed entry times when the observations carry them (from transplant, v2), else None."""
    return [o.get("entry") or 0 for o in obs] if any("entry" in o for o in obs) else None


def _km(obs: Sequence[Mapping[str, Any]], horizon: int) -> dict[str, Any]:
    entry = _entry(obs)
    est = kaplan_meier([(o["time"], o["status"]) for o in obs], horizon, entry=entry)
    return {"estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high, "at_risk": est.at_risk,
            "events": est.events, "n": est.n, "horizon_days": horizon, "delayed_entry": entry is not None}


def _aj(obs: Sequence[Mapping[str, Any]], horizon: int) -> dict[str, Any]:
    entry = _entry(obs)
    est = aalen_johansen([(o["time"], o["status"]) for o in obs], horizon, entry=entry)
    return {"estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high, "at_risk": est.at_risk,
            "events": est.events, "competing_events": est.competing_events,
            "competing_estimate": est.competing_estimate, "n": est.n, "horizon_days": horizon,
            "delayed_entry": entry is not None}


# ------------------------------------------------------------------------------------ eligibility

def _eligibility_row(s: Row) -> dict[str, Any]:
    e = s["eligibility"]
    return {"subject": s["subject"], "site": s["site"], "status": e["status"], "unmet": e["unmet"],
            "unassessed": e["unassessed"], "screened": s["screened"], "consented": s["consented"],
            "enrolled": s["enrolled"], "enrolment_date": s["enrolment_date"], "treated": s["treated"],
            "completed": s["course_completed"], "withdrawn": s["withdrawn"], "died": not s["alive"],
            "refs": e["refs"]}


def _eligibility_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    status = Counter(s["eligibility"]["status"] for s in rows)
    failed = Counter(c for s in rows for c in s["eligibility"]["unmet"])
    enrolled = [s for s in rows if s["enrolled"]]
    return {
        "registered": len(rows),
        "screened": sum(1 for s in rows if s["screened"]),
        "eligible": status["eligible"], "pending": status["pending"], "ineligible": status["ineligible"],
        "ineligible_criteria": {c: failed[c] for c in ALL_CRITERIA if failed[c]},
        "consented": sum(1 for s in rows if s["consented"]),
        "enrolled": len(enrolled),
        "treated": sum(1 for s in enrolled if s["treated"]),
        "completed": sum(1 for s in enrolled if s["course_completed"]),
        "withdrawn": sum(1 for s in enrolled if s["withdrawn"]),
        "died": sum(1 for s in enrolled if not s["alive"]),
    }


# ----------------------------------------------------------------------------------------- dosing

def _dosing_row(s: Row) -> dict[str, Any]:
    d = s["dosing"]
    keys = ("msc_d1", "planned", "given", "on_time", "early", "late", "missed", "pending", "discontinued",
            "cumulative_cells_per_kg", "relative_dose_intensity", "completed", "discontinuation_reason")
    return {"subject": s["subject"], "enrolled": s["enrolled"], **{k: d[k] for k in keys},
            "deviations": len(d["deviations"]), "refs": d["refs"]}


def _dosing_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    enrolled = [s for s in rows if s["enrolled"]]
    treated = [s for s in enrolled if s["treated"]]
    doses = [dose for s in enrolled for dose in s["dosing"]["doses"]]
    count = Counter(dose["status"] for dose in doses)
    return {
        "enrolled": len(enrolled), "treated": len(treated),
        "doses_planned": sum(s["dosing"]["planned"] for s in enrolled),
        "doses_given": sum(s["dosing"]["given"] for s in enrolled),
        **{k: count[k] for k in ("on_time", "early", "late", "missed", "pending", "discontinued")},
        "early_days": sorted(d["days_from_target"] for d in doses if d["status"] == "early"),
        "late_days": sorted(d["days_from_target"] for d in doses if d["status"] == "late"),
        "completed": rate(sum(1 for s in treated if s["dosing"]["completed"]), len(treated)),
        "cumulative_cells_per_kg": _summary_stats([s["dosing"]["cumulative_cells_per_kg"] for s in treated]),
        "planned_cumulative_cells_per_kg": params.planned_doses * params.dose_cells_per_kg,
        "relative_dose_intensity": _summary_stats([s["dosing"]["relative_dose_intensity"] for s in treated]),
        "discontinued": [{"subject": s["subject"], "reason": s["dosing"]["discontinuation_reason"]}
                         for s in enrolled if s["dosing"]["discontinuation_reason"]],
        "deviations": [{"subject": s["subject"], **d} for s in enrolled for d in s["dosing"]["deviations"]],
    }


# -------------------------------------------------------------------------------------- endpoints

def _days(found: Mapping[str, Any] | None, key: str) -> int | None:
    return found[key] if found else None


def _endpoints_row(s: Row) -> dict[str, Any]:
    e = s["endpoints"]
    anc, rbc, plt = e["neutrophil_engraftment"], e["rbc_recovery"], e["platelet"]
    return {
        "subject": s["subject"], "enrolled": s["enrolled"], "anchor_date": e["anchor_date"],
        "neutrophil_engraftment_date": e["neutrophil_engraftment_date"],
        "anc_day_post_transplant": _days(anc, "day_post_transplant"),
        "anc_days_since_msc_d1": _days(anc, "days_since_msc_d1"), "anc_msc_day": _days(anc, "msc_day"),
        "rbc_recovery_date": e["rbc_recovery_date"],
        "rbc_day_post_transplant": _days(rbc, "day_post_transplant"),
        "rbc_days_since_msc_d1": _days(rbc, "days_since_msc_d1"), "rbc_msc_day": _days(rbc, "msc_day"),
        "platelet_response": e["platelet_response"], "platelet_response_date": e["platelet_response_date"],
        "plt_day_post_transplant": _days(plt, "day_post_transplant") if e["platelet_response_date"] else None,
        "plt_days_since_msc_d1": _days(plt, "days_since_msc_d1") if e["platelet_response_date"] else None,
        "plt_msc_day": _days(plt, "msc_day") if e["platelet_response_date"] else None,
        "reasons": e.get("reasons", {}),
        "refs": sorted({r for x in (anc, rbc, plt) if x for r in x["refs"]}),
    }


def _time_stats(found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"median_days_since_msc_d1": _median([f["days_since_msc_d1"] for f in found]),
            "median_msc_day": _median([f.get("msc_day") for f in found]),
            "median_day_post_transplant": _median([f["day_post_transplant"] for f in found])}


def _median(values: Sequence[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _reason_counts(evaluable: Sequence[Mapping[str, Any]], name: str) -> dict[str, int]:
    return dict(sorted(Counter(e["reasons"][name] for e in evaluable if name in e.get("reasons", {})).items()))


def _endpoints_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    """Rates over the patients with an anchor date; v2: a lineage met at baseline leaves that
    lineage's denominator (``not_evaluable``), and every null/NR/NE endpoint is counted by reason."""
    evaluable = [s["endpoints"] for s in rows if s["enrolled"] and s["endpoints"]["anchor_date"]]

    def lineage(name: str) -> list[Mapping[str, Any]]:
        return [e for e in evaluable if e.get("reasons", {}).get(name) != "met_at_baseline"]

    anc_n, rbc_n, plt_n = (lineage(k) for k in ("neutrophil_engraftment", "rbc_recovery", "platelet_response"))
    anc = [e["neutrophil_engraftment"] for e in anc_n if e["neutrophil_engraftment"]]
    rbc = [e["rbc_recovery"] for e in rbc_n if e["rbc_recovery"]]
    best = Counter(e["platelet_response"] for e in plt_n)
    responders = [e["platelet"] for e in plt_n if e["platelet_response"] in ("CR", "PR")]
    n = len(plt_n)
    return {
        "anchor": params.endpoint_anchor,
        "enrolled": sum(1 for s in rows if s["enrolled"]), "evaluable": len(evaluable),
        "neutrophil_engraftment": {**rate(len(anc), len(anc_n)), **_time_stats(anc),
                                   "not_evaluable": len(evaluable) - len(anc_n),
                                   "reasons": _reason_counts(evaluable, "neutrophil_engraftment")},
        "rbc_recovery": {**rate(len(rbc), len(rbc_n)), **_time_stats(rbc),
                         "not_evaluable": len(evaluable) - len(rbc_n),
                         "reasons": _reason_counts(evaluable, "rbc_recovery")},
        "platelet_response": {
            "CR": rate(best["CR"], n), "PR": rate(best["PR"], n),
            "CR_or_PR": {**rate(best["CR"] + best["PR"], n), **_time_stats(responders)},
            "NR": best["NR"], "pending": best[None], "not_evaluable": len(evaluable) - n,
            "reasons": _reason_counts(evaluable, "platelet_response"),
        },
        "day_labels": {"msc_day": "MSC day (D1 = first infusion, no D0)",
                       "day_post_transplant": "day post-transplant (transplant = day 0)",
                       "days_since_msc_d1": "days since MSC D1 (D1 = 0)"},
    }


# ----------------------------------------------------------------------------------------- safety

def _safety_row(s: Row) -> dict[str, Any]:
    sa = s["safety"]
    clocks = [c for ae in sa["adverse_events"] for c in (ae["clocks"] or [])]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "adverse_events": len(sa["adverse_events"]),
            "serious": sa["serious"], "max_grade": sa["max_grade"], "lab_adverse_events": len(sa["lab_adverse_events"]),
            "clocks_missed": sum(1 for c in clocks if c["met"] is False),
            "refs": [ae["ref"] for ae in sa["adverse_events"]]}


def _by_term_grade(items: Sequence[tuple[str, str, int]], source: str) -> list[dict[str, Any]]:
    """items: (subject, term, grade) -> one line per term: events per grade, events, patients."""
    out = []
    for term in sorted({t for _, t, _ in items}):
        mine = [(s, g) for s, t, g in items if t == term]
        line: dict[str, Any] = {"term": term, "source": source}
        line.update({f"grade_{g}": sum(1 for _, x in mine if x == g) for g in range(1, 6)})
        line.update(events=len(mine), patients=len({s for s, _ in mine}))
        out.append(line)
    return out


def _safety_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    reported = [(s["subject"], ae) for s in rows for ae in s["safety"]["adverse_events"]]
    labs = [(s["subject"], lab) for s in rows for lab in s["safety"]["lab_adverse_events"]]
    saes = [{"subject": subj, **{k: ae[k] for k in ("ref", "term", "grade", "onset", "aware", "serious", "related")},
             "expected": ae.get("expected"), "susar": ae.get("susar", False),
             "expectedness_missing": ae.get("expectedness_missing", False),
             "awareness_missing": ae.get("awareness_missing", False), "clocks": ae["clocks"],
             "met": _all_met(ae["clocks"])}
            for subj, ae in reported if ae["serious"]]
    clocks = [c for sae in saes for c in sae["clocks"]]
    return {
        "patients_with_ae": rate(sum(1 for s in rows if s["enrolled"] and s["safety"]["adverse_events"]),
                                 sum(1 for s in rows if s["enrolled"])),
        "adverse_events": len(reported),
        "by_term_grade": _by_term_grade([(s, ae["term"], ae["grade"]) for s, ae in reported], "reported"),
        "lab_worsening_by_term_grade": _by_term_grade([(s, lab["term"], lab["grade"]) for s, lab in labs], "lab"),
        "serious_adverse_events": len(saes), "susars": sum(1 for x in saes if x["susar"]),
        "expectedness_missing": [x["ref"] for x in saes if x["expectedness_missing"]],
        "awareness_missing": [x["ref"] for x in saes if x["awareness_missing"]],
        "clocks": {"met": sum(1 for c in clocks if c["met"] is True),
                   "missed": sum(1 for c in clocks if c["met"] is False),
                   "pending": sum(1 for c in clocks if c["met"] is None)},
        "saes": saes,
    }


def _all_met(clocks: Sequence[Mapping[str, Any]] | None) -> bool | None:
    states = [c["met"] for c in clocks or []]
    if any(m is False for m in states):
        return False
    return None if any(m is None for m in states) else True


# ------------------------------------------------------------------------------------------- gvhd

def _gvhd_row(s: Row) -> dict[str, Any]:
    g = s["gvhd"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "acute_max_grade": g["acute_max_grade"],
            "acute_grade_2_4_date": g["acute_grade_2_4_date"], "chronic_max_severity": g["chronic_max_severity"],
            "chronic_onset_date": g["chronic_onset_date"], "assessments": len(g["acute"]) + len(g["chronic"]),
            "baseline_assessments": len(g.get("baseline") or []),
            "refs": sorted({r for a in g["acute"] + g["chronic"] for r in a["refs"]})}


def _gvhd_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    enrolled = [s["gvhd"] for s in rows if s["enrolled"]]
    n = len(enrolled)
    acute = Counter(g["acute_max_grade"] for g in enrolled)
    chronic = Counter(g["chronic_max_severity"] for g in enrolled)
    h = params.survival_horizon_days
    return {
        "enrolled": n,
        "acute_max_grade": {**{str(k): acute[k] for k in range(5)}, "not_assessed": acute[None]},
        "acute_2_4": rate(sum(acute[k] for k in (2, 3, 4)), n),
        "acute_3_4": rate(sum(acute[k] for k in (3, 4)), n),
        "chronic_max_severity": {**{k: chronic[k] for k in ("none", "mild", "moderate", "severe")},
                                 "not_assessed": chronic[None]},
        "chronic_moderate_severe": rate(chronic["moderate"] + chronic["severe"], n),
        "acute_2_4_cumulative_incidence": _aj([g["acute_2_4_incidence"] for g in enrolled if g["acute_2_4_incidence"]], h),
        "chronic_cumulative_incidence": _aj([g["chronic_incidence"] for g in enrolled if g["chronic_incidence"]], h),
        "baseline_prevalent": {"patients": sum(1 for g in enrolled if g.get("baseline")),
                               "assessments": sum(len(g.get("baseline") or []) for g in enrolled)},
    }


# ------------------------------------------------------------------------------------- infections

def _infections_row(s: Row) -> dict[str, Any]:
    f = s["infection_followup"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "infections": s["infections"],
            "first_onset": f["first_onset"], "episodes_at_risk": f["episodes"], "days_at_risk": f["days_at_risk"],
            "max_grade": max((e["grade"] for e in s["infection_episodes"]), default=None),
            "sites": sorted({e["site"] for e in s["infection_episodes"]}),
            "baseline_infections": len(s.get("baseline_infections") or []),
            "refs": [e["ref"] for e in s["infection_episodes"]]}


def _infections_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    enrolled = [s for s in rows if s["enrolled"]]
    at_risk = [s["infection_followup"] for s in enrolled if s["infection_followup"]["origin_date"]]
    days = sum(f["days_at_risk"] for f in at_risk)
    episodes = sum(f["episodes"] for f in at_risk)
    all_episodes = [e for s in enrolled for e in s["infection_episodes"]]
    return {
        "patients_with_infection": rate(sum(1 for s in enrolled if s["infections"]), len(enrolled)),
        "episodes": len(all_episodes),
        "baseline_prevalent": {"patients": sum(1 for s in enrolled if s.get("baseline_infections")),
                               "episodes": sum(len(s.get("baseline_infections") or []) for s in enrolled)},
        "episodes_at_risk": episodes, "patient_days_at_risk": days,
        "per_100_patient_days": episodes / days * 100 if days else None,
        "cumulative_incidence": _aj([f["incidence"] for f in at_risk if f["incidence"]], params.survival_horizon_days),
        "by_grade": {str(g): sum(1 for e in all_episodes if e["grade"] == g) for g in range(1, 6)},
        "by_site": dict(sorted(Counter(e["site"] for e in all_episodes).items())),
    }


# --------------------------------------------------------------------------------------- survival

def _survival_row(s: Row) -> dict[str, Any]:
    v = s["survival"]
    os_, dfs, tx = v["os"], v["dfs"], v["from_transplant"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "origin_date": v["origin_date"],
            "os_days": os_["time"] if os_ else None, "os_event": os_["status"] if os_ else None,
            "dfs_days": dfs["time"] if dfs else None, "dfs_event": dfs["status"] if dfs else None,
            "dfs_censor": v["dfs_censor"], "relapse_date": s["relapse_date"], "death_date": s["death_date"],
            "last_alive_date": v.get("last_alive_date"), "entry_days": os_.get("entry") if os_ else None,
            "last_disease_assessment_date": v.get("last_disease_assessment_date"),
            "os_days_from_transplant": tx["os"]["time"], "dfs_days_from_transplant": tx["dfs"]["time"],
            "refs": sorted({r for o in (os_, dfs) if o for r in o["refs"]})}


def survival_observations(rows: Sequence[Row], key: str, origin: str | None = None) -> list[dict[str, Any]]:
    """The OS/DFS/relapse observations of enrolled patients from the protocol origin (or ``origin``)."""
    out = []
    for s in rows:
        if not s["enrolled"]:
            continue
        block = s["survival"] if origin is None else s["survival"][f"from_{origin}"]
        if block[key] is not None:
            out.append({**block[key], "subject": s["subject"]})
    return out


def _survival_summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    h = params.survival_horizon_days

    def block(origin: str | None) -> dict[str, Any]:
        delayed = params.transplant_delayed_entry and (origin or params.survival_origin) == "transplant"
        label = ("from transplant (day 0), conditional on reaching MSC treatment (delayed entry at MSC D1)"
                 if delayed else "from transplant (day 0)" if (origin or params.survival_origin) == "transplant"
                 else "from the first MSC infusion (MSC D1)")
        return {"label": label, "os_1y": _km(survival_observations(rows, "os", origin), h),
                "dfs_1y": _km(survival_observations(rows, "dfs", origin), h),
                "relapse_1y": _aj(survival_observations(rows, "relapse", origin), h)}

    return {"origin": params.survival_origin, "horizon_days": h,
            "enrolled": sum(1 for s in rows if s["enrolled"]), **block(None),
            "relapse_censor": params.relapse_censor, "from_transplant": block("transplant")}


_REPORTS: dict[str, tuple[Callable[[Row], dict], Callable[[Sequence[Row], Protocol], dict]]] = {
    "eligibility": (_eligibility_row, _eligibility_summary),
    "dosing": (_dosing_row, _dosing_summary),
    "endpoints": (_endpoints_row, _endpoints_summary),
    "safety": (_safety_row, _safety_summary),
    "gvhd": (_gvhd_row, _gvhd_summary),
    "infections": (_infections_row, _infections_summary),
    "survival": (_survival_row, _survival_summary),
}


def build_report(name: str, patients: Sequence[Row | PatientState], params: Protocol, *,
                 as_of: datetime | None = None, cutoff: date | None = None) -> dict[str, Any]:
    """Report ``name``: {report, as_of, cutoff, protocol_version, rows (one per subject), summary}.

    ``patients`` are projection slices (rows of that projection's table) or PatientStates.
    """
    row_of, summary_of = _REPORTS[name]
    rows = [slice_state(name, p.as_json()) if isinstance(p, PatientState) else p for p in patients]
    rows = sorted(rows, key=lambda s: s["subject"])
    summary = summary_of(rows, params)
    doc: dict[str, Any] = {"report": name, "as_of": iso(as_of), "cutoff": iso(cutoff),
                           "protocol_version": params.version}
    if name == "survival":
        doc.update(origin=summary["origin"], os_1y=summary["os_1y"], dfs_1y=summary["dfs_1y"])
    doc.update(rows=[row_of(s) for s in rows], summary=summary)
    return doc
