"""The dosing section: the derived course of MSC doses (windows, deviations, discontinuation), its
report row and cohort summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from pgf_events.domain.patient import Patient
from pgf_events.domain.rules.dosing import assess_dosing
from pgf_events.domain.rules.inputs import InfusionPoint
from pgf_events.formatting import iso
from pgf_events.projections.clinical import msc_day
from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row, rate, summary_stats
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "evaluation_date", "enrolled", "enrolment_date", "treated", "dosing", "withdrawn", "withdrawal_date",
    "withdrawal_reason", "alive", "death_date",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "msc_d1", "given", "on_time", "early", "late", "missed", "pending", "cumulative_cells_per_kg", "relative_dose_intensity", "deviations", "discontinuation_reason",
)
HEADERS = {
    "msc_d1": "MSC D1", "discontinued": "disc.", "cumulative_cells_per_kg": "×10^6/kg",
    "relative_dose_intensity": "RDI", "discontinuation_reason": "stopped", "deviations": "dev.",
}


def derive(patient: Patient, infusions: list[InfusionPoint], params: Protocol, as_of: date) -> dict[str, Any]:
    withdrawal, death = patient.withdrawal, patient.death
    stops = []
    if withdrawal is not None:
        stops.append((withdrawal[1].date, withdrawal[1].reason, (patient.ref(withdrawal[0]),)))
    if death is not None:
        stops.append((death[1].date, f"death on {death[1].date.isoformat()}", (patient.ref(death[0]),)))
    stopped = min(stops) if stops and patient.enrolment is not None else None
    s = assess_dosing(infusions, params, as_of=as_of, stopped=stopped)
    # The course was discontinued when a withdrawal or death came before its last window closed.
    course_end = None if s.msc_d1 is None else s.msc_d1 + timedelta(
        days=(params.planned_doses - 1) * params.dose_interval_days + params.dose_window_days)
    stops = [stop for stop in stops if course_end is None or stop[0] <= course_end]
    reason = min(stops)[1] if stops and not s.completed else None
    return {
        "planned": s.planned, "given": s.given, "on_time": s.on_time, "early": s.early, "late": s.late,
        "missed": s.missed, "pending": s.pending, "discontinued": s.discontinued,
        "cumulative_cells_per_kg": s.cumulative_cells_per_kg,
        "planned_cumulative_cells_per_kg": s.planned_cumulative_cells_per_kg,
        "relative_dose_intensity": s.relative_dose_intensity,
        "completed": s.completed, "discontinuation_reason": reason, "msc_d1": iso(s.msc_d1),
        "doses": [
            {"number": d.number, "target": iso(d.target), "msc_day": msc_day(s.msc_d1, d.target),
             "status": d.status, "date": iso(d.day),
             "days_from_target": d.days_from_target, "cells_per_kg": d.cells_per_kg,
             "deviation": d.deviation, "within_tolerance": d.within_tolerance, "reason": d.reason,
             "refs": list(d.refs)}
            for d in s.doses
        ],
        "deviations": [
            {"dose": d.dose, "kind": d.kind, "detail": d.detail, "refs": list(d.refs)} for d in s.deviations
        ],
        "refs": list(s.refs),
    }


def row(s: Row) -> dict[str, Any]:
    d = s["dosing"]
    keys = ("msc_d1", "planned", "given", "on_time", "early", "late", "missed", "pending", "discontinued",
            "cumulative_cells_per_kg", "relative_dose_intensity", "completed", "discontinuation_reason")
    d1 = date.fromisoformat(d["msc_d1"]) if d["msc_d1"] else None
    end = s["death_date"] or s["evaluation_date"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], **{k: d[k] for k in keys},
            "deviations": len(d["deviations"]),
            # the swimmer plot's lanes: each given dose and the last day of follow-up as MSC D-numbers
            "dose_msc_days": [msc_day(d1, date.fromisoformat(x["date"])) for x in d["doses"] if x["date"]],
            "dose_statuses": [x["status"] for x in d["doses"] if x["date"]],
            "last_msc_day": msc_day(d1, date.fromisoformat(end)) if end else None,
            "next_dose": next((x["number"] for x in d["doses"] if x["status"] == "pending"), None),
            "next_dose_due": next((x["target"] for x in d["doses"] if x["status"] == "pending"), None),
            "died": s["death_date"] is not None, "withdrawn": s["withdrawn"], "refs": d["refs"]}

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
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
        "cumulative_cells_per_kg": summary_stats([s["dosing"]["cumulative_cells_per_kg"] for s in treated]),
        "planned_cumulative_cells_per_kg": params.planned_doses * params.dose_cells_per_kg,
        "relative_dose_intensity": summary_stats([s["dosing"]["relative_dose_intensity"] for s in treated]),
        "discontinued": [{"subject": s["subject"], "reason": s["dosing"]["discontinuation_reason"]}
                         for s in enrolled if s["dosing"]["discontinuation_reason"]],
        "deviations": [{"subject": s["subject"], **d} for s in enrolled for d in s["dosing"]["deviations"]],
    }


SECTION = Section('dosing', KEYS, row, summary, COLUMNS, HEADERS)
