"""The coordinator's worklist (``pgf due``): what each patient on study needs, most urgent first.

Pure: a patient, its review stream, the protocol and the day in; items out. Items:

- ``dose``: the next dose window (opens, target, closes; dose 1 targets the enrolment day, later
  doses MSC D1 + (k-1) x interval) and every overdue dose (its window closed, no infusion), unless
  a death or withdrawal ended the course.
- ``labs``: the protocol's blood-count schedule (``lab_schedule``, default at least 2 counts of
  ANC, PLT and Hb per 7 days to D57, 1 per 7 days to D100, 1 per 30 days to D365; D1 = MSC D1 = 1)
  is checked over the last full period ending on the day: too few counts is overdue.
- ``sae``: every SAE reporting clock still running (not reported yet), with its due time (overdue
  once passed). The sponsor clock counts as reported when the SAE was recorded here.
- ``query``: every open query (for the site to answer), with its age.
- ``signature``: an enrolled patient whose casebook has no valid investigator signature.

Urgency: overdue, then due now, then open queries, then upcoming windows, then unsigned casebooks;
within each, by due time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.domain.review import Review
from pgf_events.domain.rules.dosing import assess_dosing
from pgf_events.domain.rules.inputs import InfusionPoint
from pgf_events.domain.rules.safety import sae_clocks
from pgf_events.protocol import Protocol, lab_schedule

RANK = {"overdue": 0, "due": 1, "open": 2, "upcoming": 3, "unsigned": 4}
FAR = datetime.max.replace(tzinfo=UTC)


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _item(patient: Patient, what: str, status: str, detail: str, due: date | datetime | None,
          **extra: Any) -> dict[str, Any]:
    return {"subject": patient.subject, "site": patient.registration.site, "what": what, "status": status,
            "due": due, "detail": detail, **extra}


def _stop(patient: Patient, on: date) -> tuple[date, str, tuple[str, ...]] | None:
    stops = [(r.date, why, (patient.ref(v),)) for found, why in ((patient.death, "death"),
             (patient.withdrawal, "withdrawal")) if found is not None for v, r in [found] if r.date <= on]
    return min(stops) if stops else None


def dose_items(patient: Patient, params: Protocol, on: date) -> list[dict[str, Any]]:
    enrolment = patient.enrolment
    if enrolment is None:
        return []
    stopped = _stop(patient, on)
    w = timedelta(days=params.dose_window_days)
    infusions = [InfusionPoint(day=r.date, ref=patient.ref(v), cells=r.cells, weight_kg=r.weight_kg)
                 for v, r in patient.active(vo.Infusion) if r.date <= on]
    if not infusions:
        if stopped is not None:
            return []
        target = enrolment[1].date
        status = "overdue" if on > target + w else "due" if on >= target - w else "upcoming"
        return [_item(patient, "dose", status, f"dose 1: window {target - w}..{target + w}", target,
                      dose=1, opens=target - w, target=target, closes=target + w)]
    summary = assess_dosing(infusions, params, as_of=on, stopped=stopped)
    out = []
    pending_seen = False
    last_given = max((d.number for d in summary.doses if d.day is not None), default=0)
    for dose in summary.doses:
        if dose.target is None:
            continue
        opens, closes = dose.target - w, dose.target + w
        if dose.status == "missed" and dose.number > last_given:  # skipped doses before a later one are deviations
            out.append(_item(patient, "dose", "overdue",
                             f"dose {dose.number} missed: window {opens}..{closes} closed without an infusion",
                             dose.target, dose=dose.number, opens=opens, target=dose.target, closes=closes))
        elif dose.status == "pending" and not pending_seen:
            pending_seen = True
            status = "due" if opens <= on else "upcoming"
            out.append(_item(patient, "dose", status, f"dose {dose.number}: window {opens}..{closes}", dose.target,
                             dose=dose.number, opens=opens, target=dose.target, closes=closes))
    return out


def lab_items(patient: Patient, params: Protocol, on: date) -> list[dict[str, Any]]:
    infusions = [r.date for _, r in patient.active(vo.Infusion)]
    if not infusions or (patient.death is not None and patient.death[1].date <= on):
        return []
    d1 = min(infusions)
    day = (on - d1).days + 1  # MSC day: D1 = 1
    segment = next((s for s in lab_schedule(params.lab_schedule) if day <= s[2]), None)
    if segment is None or day < 1:
        return []
    count, per, until = segment
    if day < per:  # not a full period since D1 yet
        return []
    start = on - timedelta(days=per - 1)
    counts = sorted(r.date for _, r in patient.active(vo.LabPanel)
                    if start <= r.date <= on and None not in (r.anc, r.plt, r.hb))
    if len(counts) >= count:
        return []
    last = max((r.date for _, r in patient.active(vo.LabPanel) if r.date <= on), default=None)
    return [_item(patient, "labs", "overdue",
                  f"{len(counts)} blood count(s) (ANC/PLT/Hb) in {start}..{on}; the schedule asks {count} per {per} "
                  f"days to D{until} (last lab {last or 'none'})", on, msc_day=day)]


def sae_items(patient: Patient, params: Protocol, at: datetime,
              recorded_at: Mapping[int, datetime]) -> list[dict[str, Any]]:
    out = []
    for v, ae in patient.active(vo.AdverseEvent):
        if not ae.serious:
            continue
        clocks = sae_clocks(ae.aware or ae.onset, params, seriousness=ae.serious, relatedness=ae.related,
                            expected=getattr(ae, "expected", None) is True,
                            sponsor_reported=recorded_at.get(v), as_of=at, refs=(patient.ref(v),))
        for clock in (clocks.sponsor, clocks.regulator, clocks.regulator_complete):
            if clock is None or clock.reported is not None:  # reported (on time or late): nothing left to do
                continue
            status = "overdue" if clock.due < at else "due"
            out.append(_item(patient, "sae", status, f"{clock.name} report of '{ae.term}' ({patient.ref(v)})",
                             clock.due, ref=patient.ref(v)))
    return out


def query_items(patient: Patient, review: Review | None, at: datetime) -> list[dict[str, Any]]:
    if review is None:
        return []
    return [_item(patient, "query", "open", f"{q.qid} on {q.ref}: {q.text}", None, qid=q.qid,
                  age_days=max(0, (at - q.opened_at).days))
            for q in review.queries.values() if q.status == "open"]


def worklist(patient: Patient, review: Review | None, params: Protocol, on: date, at: datetime,
             recorded_at: Mapping[int, datetime], signed: bool) -> list[dict[str, Any]]:
    """Every item of one patient (see the module docstring); ``signed``: a valid signature covers it."""
    items = [*dose_items(patient, params, on), *lab_items(patient, params, on), *sae_items(patient, params, at,
             recorded_at), *query_items(patient, review, at)]
    if patient.enrolment is not None and not signed:
        items.append(_item(patient, "signature", "unsigned", "casebook has no valid investigator signature", None))
    return items


def sort_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(item: dict[str, Any]) -> tuple[int, datetime, int, str]:
        due = item["due"]
        when = FAR if due is None else due if isinstance(due, datetime) else end_of(due)
        return RANK[item["status"]], when, -item.get("age_days", 0), item["subject"]

    return sorted(items, key=key)
