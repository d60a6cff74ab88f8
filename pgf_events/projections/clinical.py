"""The clinical parts of a patient's derived state: evaluation date and cut-off, dosing, endpoints.

Clinical dates only (clinical-rules.md v2, "Time anchors"): the evaluation date, the last date
known alive and every endpoint use the dates on which something happened to the patient
(:meth:`~pgf_events.domain.values.Record.clinical_dates`), never an AE awareness time or a
recorded time.

Cohort cut-off (v2, ``--cutoff C``): the patient is evaluated as of C. :func:`cut_off` hides every
record whose clinical date is after C (as if it had not happened yet), dose windows and the
platelet evaluation day that closed by C count as closed (the evaluation date is C), and
censoring happens at the last date known alive on or before C.

Day numbering (v2): ``day_post_transplant`` counts from day 0 = transplant; ``msc_day`` is the
protocol's D-number, D1 = first infusion, D-1 the day before, no D0 (:func:`msc_day`).
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import attrs

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules import hemogram
from pgf_events.domain.rules.dosing import assess_dosing
from pgf_events.domain.rules.inputs import InfusionPoint, LabPoint, TransfusionPoint
from pgf_events.domain.rules.response import lineage_outcomes
from pgf_events.protocol import Protocol

DAY_LABELS = {"day_post_transplant": "day post-transplant (transplant = day 0)",
              "msc_day": "MSC day (D1 = first infusion, no D0)"}


def msc_day(d1: date | None, day: date | None) -> int | None:
    """The protocol's D-number of ``day``: D1 = ``d1``, D2 the next day, D-1 the day before; no D0."""
    if d1 is None or day is None:
        return None
    n = (day - d1).days
    return n + 1 if n >= 0 else n


def _clinical_latest(record: vo.Record) -> date | None:
    days = [day for _, day in record.clinical_dates()]
    return max(days) if days else None


def latest_clinical_date(patient: Patient) -> tuple[date, list[int]]:
    """The latest clinical date of any standing record (or the transplant) and the versions holding it."""
    latest, versions = patient.registration.transplant_date, [1]
    for version, record in patient.clinical_records():
        day = _clinical_latest(record)
        if day is None:
            continue
        if day > latest:
            latest, versions = day, [version]
        elif day == latest:
            versions.append(version)
    return latest, versions


def cut_off(patient: Patient, cutoff: date) -> Patient:
    """A read-only view of ``patient`` in which records dated after ``cutoff`` are not yet there.

    A record is dated by its clinical date (an AE by its onset, a lab by its date); the original
    aggregate is untouched.
    """
    view = copy.copy(patient)
    entries = {}
    for version, entry in patient.entries.items():
        record = entry.record
        if version != 1 and record is not None and not entry.voided and record.clinical_date > cutoff:
            entry = attrs.evolve(entry, voided=True)
        entries[version] = entry
    view.entries = entries
    return view


def exit_event(patient: Patient) -> tuple[date, str, str] | None:
    """The death or withdrawal that ended the patient's participation: (date, reason code, ref)."""
    exits = []
    if patient.death is not None:
        exits.append((patient.death[1].date, "died", patient.ref(patient.death[0])))
    if patient.withdrawal is not None:
        exits.append((patient.withdrawal[1].date, "withdrew", patient.ref(patient.withdrawal[0])))
    return min(exits) if exits else None


# ---------------------------------------------------------------------------------------- dosing

def dosing(patient: Patient, infusions: list[InfusionPoint], params: Protocol, as_of: date) -> dict[str, Any]:
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
        "completed": s.completed, "discontinuation_reason": reason, "msc_d1": _iso(s.msc_d1),
        "doses": [
            {"number": d.number, "target": _iso(d.target), "msc_day": msc_day(s.msc_d1, d.target),
             "status": d.status, "date": _iso(d.day),
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


# ------------------------------------------------------------------------------------- endpoints

def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _dated(found: Any, msc_d1: date | None) -> dict[str, Any]:
    return {"date": _iso(found.day), "day_post_transplant": found.day_post_transplant,
            "msc_day": msc_day(msc_d1, found.day),
            "days_since_msc_d1": found.days_since_msc_d1, "days_from_anchor": found.days_from_anchor}


def endpoints(labs: list[LabPoint], transfusions: list[TransfusionPoint], params: Protocol, *,
              transplant: date, msc_d1: date | None, as_of: date,
              exit_at: tuple[date, str, str] | None) -> dict[str, Any]:
    out = lineage_outcomes(labs, transfusions, params, transplant_day=transplant, msc_d1=msc_d1, as_of=as_of,
                           exit_event=exit_at[:2] if exit_at else None)
    anc, rbc, plt = out.anc, out.rbc, out.plt
    anchor = hemogram.endpoint_anchor(params, transplant_day=transplant, msc_d1=msc_d1)
    not_evaluable = sorted(out.baseline_refs)
    return {
        "anchor": params.endpoint_anchor, "anchor_date": _iso(anchor), "msc_d1": _iso(msc_d1),
        "neutrophil_engraftment_date": _iso(anc.day) if anc else None,
        "rbc_recovery_date": _iso(rbc.day) if rbc else None,
        "platelet_response": out.platelet_response,
        "platelet_response_date": _iso(plt.day) if plt and plt.response != "NR" else None,
        "reasons": dict(sorted(out.reasons.items())),
        "not_evaluable": not_evaluable,
        "baseline_refs": {k: list(v) for k, v in sorted(out.baseline_refs.items())},
        "neutrophil_engraftment": {**_dated(anc, msc_d1), "values": list(anc.values), "refs": list(anc.refs)}
        if anc else None,
        "rbc_recovery": {**_dated(rbc, msc_d1), "hb": rbc.hb, "refs": list(rbc.refs)} if rbc else None,
        "platelet": {**_dated(plt, msc_d1), "response": plt.response, "window_end": _iso(plt.window_end),
                     "values": list(plt.values), "refs": list(plt.refs)} if plt else None,
        "day_labels": DAY_LABELS,
    }
