"""The GVHD section: acute (MAGIC) and chronic (NIH) assessments graded and their cumulative incidence
(derived), the report row and the cohort summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules import gvhd
from pgf_events.formatting import iso
from pgf_events.projections import follow_up
from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row, aj, rate
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "evaluation_date", "enrolled", "treated", "alive", "death_date", "gvhd",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "acute_max_grade", "acute_grade_2_4_date", "chronic_max_severity", "chronic_onset_date",
    "assessments",
)
HEADERS = {
    "acute_max_grade": "aGVHD max", "acute_grade_2_4_date": "aGVHD II-IV",
    "chronic_max_severity": "cGVHD max", "chronic_onset_date": "cGVHD onset",
}


def derive(patient: Patient, timeline: follow_up.Timeline, params: Protocol, msc_d1: date | None) -> dict[str, Any]:
    """Acute and chronic GVHD; v2: assessments before MSC D1 are prevalent at baseline, listed apart."""
    acute, chronic, baseline = [], [], []
    for v, r in sorted(patient.active(vo.GvhdAssessment), key=lambda vr: (vr[1].date, vr[0])):
        if msc_d1 is not None and r.date < msc_d1:
            baseline.append(_baseline_gvhd(patient, v, r))
        elif r.chronic:
            chronic.append(gvhd.chronic_gvhd(day=r.date, ref=patient.ref(v), scores=dict(r.organ or {})))
        else:
            acute.append(gvhd.acute_gvhd(
                day=r.date, ref=patient.ref(v), skin_bsa_pct=r.skin_bsa, bullae=bool(r.bullae),
                bilirubin_umol_l=r.bilirubin, upper_gi=r.upper_gi, stool_ml_per_day=r.stool_ml,
                severe_pain=bool(r.severe_pain),
            ))
    acute_2 = next((a for a in acute if a.grade >= 2), None)
    chronic_any = next((c for c in chronic if c.severity != "none"), None)
    return {
        "acute_max_grade": gvhd.max_acute_grade(acute),
        "chronic_max_severity": gvhd.max_chronic_severity(chronic),
        "acute_grade_2_4_date": iso(acute_2.day) if acute_2 else None,
        "chronic_onset_date": iso(chronic_any.day) if chronic_any else None,
        "acute": [
            {"date": iso(a.day), "grade": a.grade, "skin": a.stages.skin, "liver": a.stages.liver,
             "upper_gi": a.stages.upper_gi, "lower_gi": a.stages.lower_gi, "complete": a.complete,
             "refs": list(a.refs)}
            for a in acute
        ],
        "chronic": [{"date": iso(c.day), "severity": c.severity, "scores": dict(c.scores), "refs": list(c.refs)}
                    for c in chronic],
        "acute_2_4_incidence": follow_up.competing(timeline, acute_2.day if acute_2 else None,
                                                  acute_2.refs if acute_2 else ()),
        "chronic_incidence": follow_up.competing(timeline, chronic_any.day if chronic_any else None,
                                                 chronic_any.refs if chronic_any else ()),
        "baseline": baseline,
    }


def _baseline_gvhd(patient: Patient, version: int, r: vo.GvhdAssessment) -> dict[str, Any]:
    ref = patient.ref(version)
    if r.chronic:
        c = gvhd.chronic_gvhd(day=r.date, ref=ref, scores=dict(r.organ or {}))
        return {"date": iso(r.date), "type": "chronic", "severity": c.severity, "refs": [ref]}
    a = gvhd.acute_gvhd(day=r.date, ref=ref, skin_bsa_pct=r.skin_bsa, bullae=bool(r.bullae),
                        bilirubin_umol_l=r.bilirubin, upper_gi=r.upper_gi, stool_ml_per_day=r.stool_ml,
                        severe_pain=bool(r.severe_pain))
    return {"date": iso(r.date), "type": "acute", "grade": a.grade, "refs": [ref]}


def row(s: Row) -> dict[str, Any]:
    g = s["gvhd"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "acute_max_grade": g["acute_max_grade"],
            "acute_grade_2_4_date": g["acute_grade_2_4_date"], "chronic_max_severity": g["chronic_max_severity"],
            "chronic_onset_date": g["chronic_onset_date"], "assessments": len(g["acute"]) + len(g["chronic"]),
            "baseline_assessments": len(g.get("baseline") or []),
            "refs": sorted({r for a in g["acute"] + g["chronic"] for r in a["refs"]})}

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
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
        "acute_2_4_cumulative_incidence": aj([g["acute_2_4_incidence"] for g in enrolled if g["acute_2_4_incidence"]], h),
        "chronic_cumulative_incidence": aj([g["chronic_incidence"] for g in enrolled if g["chronic_incidence"]], h),
        "baseline_prevalent": {"patients": sum(1 for g in enrolled if g.get("baseline")),
                               "assessments": sum(len(g.get("baseline") or []) for g in enrolled)},
    }


SECTION = Section('gvhd', KEYS, row, summary, COLUMNS, HEADERS)
