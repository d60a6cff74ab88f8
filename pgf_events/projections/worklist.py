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

Everything but the day comes from :class:`WorklistInputs`, what one patient's stream says that the
items need (enrolment, infusions, death and withdrawal, which labs were complete, serious AEs with
the time each was recorded, whether a valid signature covers the casebook). They do not depend on
the day, so the web worklist keeps them per patient in a read model (:mod:`.worklist_model`) and
``pgf due`` builds them from the folded patient: both then run the same functions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs

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


@attrs.frozen
class Sae:
    """A serious adverse event as the SAE clocks need it."""

    ref: str
    term: str
    awareness: date | datetime  # ``aware``, else the onset day
    serious: tuple[str, ...]
    related: str | None
    expected: bool
    recorded: datetime | None  # when it was recorded here: the sponsor report


@attrs.frozen
class WorklistInputs:
    """What the worklist needs of one patient's stream, whatever the day (JSON round trip: exact)."""

    subject: str
    site: str
    enrolment: date | None
    stops: tuple[tuple[date, str, str], ...]  # (date, death|withdrawal, ref)
    death: date | None
    infusions: tuple[InfusionPoint, ...]  # standing infusions, in recording order
    labs: tuple[tuple[date, bool], ...]  # standing labs: (date, ANC, PLT and Hb all given)
    saes: tuple[Sae, ...]
    signed: bool

    @classmethod
    def of(cls, patient: Patient, recorded_at: Mapping[int, datetime], signed: bool) -> WorklistInputs:
        enrolment = patient.enrolment
        stops = tuple((r.date, why, patient.ref(v)) for found, why in ((patient.death, "death"),
                      (patient.withdrawal, "withdrawal")) if found is not None for v, r in [found])
        return cls(
            subject=patient.subject, site=patient.registration.site,
            enrolment=enrolment[1].date if enrolment is not None else None, stops=stops,
            death=patient.death[1].date if patient.death is not None else None,
            infusions=tuple(InfusionPoint(day=r.date, ref=patient.ref(v), cells=r.cells, weight_kg=r.weight_kg)
                            for v, r in patient.active(vo.Infusion)),
            labs=tuple((r.date, None not in (r.anc, r.plt, r.hb)) for _, r in patient.active(vo.LabPanel)),
            saes=tuple(Sae(ref=patient.ref(v), term=ae.term, awareness=ae.aware or ae.onset, serious=tuple(ae.serious),
                           related=ae.related, expected=getattr(ae, "expected", None) is True,
                           recorded=recorded_at.get(v))
                       for v, ae in patient.active(vo.AdverseEvent) if ae.serious),
            signed=signed)

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject, "site": self.site, "enrolment": _day(self.enrolment),
            "stops": [[_day(d), why, ref] for d, why, ref in self.stops], "death": _day(self.death),
            "infusions": [[_day(i.day), i.ref, i.cells, i.weight_kg] for i in self.infusions],
            "labs": [[_day(d), complete] for d, complete in self.labs],
            "saes": [{"ref": s.ref, "term": s.term, "awareness": _stamp(s.awareness), "serious": list(s.serious),
                      "related": s.related, "expected": s.expected, "recorded": _stamp(s.recorded)} for s in self.saes],
            "signed": self.signed,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> WorklistInputs:
        return cls(
            subject=doc["subject"], site=doc["site"], enrolment=_undate(doc["enrolment"]),
            stops=tuple((date.fromisoformat(d), why, ref) for d, why, ref in doc["stops"]),
            death=_undate(doc["death"]),
            infusions=tuple(InfusionPoint(day=date.fromisoformat(d), ref=ref, cells=cells, weight_kg=kg)
                            for d, ref, cells, kg in doc["infusions"]),
            labs=tuple((date.fromisoformat(d), bool(complete)) for d, complete in doc["labs"]),
            saes=tuple(Sae(ref=s["ref"], term=s["term"], awareness=_unstamp(s["awareness"]),  # type: ignore[arg-type]
                           serious=tuple(s["serious"]), related=s["related"], expected=s["expected"],
                           recorded=_unstamp(s["recorded"]))  # type: ignore[arg-type]
                       for s in doc["saes"]),
            signed=bool(doc["signed"]))


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _undate(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _stamp(value: date | datetime | None) -> list[str] | None:
    """A date or a date-time, kept apart (an awareness time may be either)."""
    if value is None:
        return None
    return ["datetime" if isinstance(value, datetime) else "date", value.isoformat()]


def _unstamp(value: list[str] | None) -> date | datetime | None:
    if value is None:
        return None
    kind, text = value
    return datetime.fromisoformat(text) if kind == "datetime" else date.fromisoformat(text)


def _item(inputs: WorklistInputs, what: str, status: str, detail: str, due: date | datetime | None,
          **extra: Any) -> dict[str, Any]:
    return {"subject": inputs.subject, "site": inputs.site, "what": what, "status": status,
            "due": due, "detail": detail, **extra}


def _stop(inputs: WorklistInputs, on: date) -> tuple[date, str, tuple[str, ...]] | None:
    stops = [(d, why, (ref,)) for d, why, ref in inputs.stops if d <= on]
    return min(stops) if stops else None


def dose_items(inputs: WorklistInputs, params: Protocol, on: date) -> list[dict[str, Any]]:
    if inputs.enrolment is None:
        return []
    stopped = _stop(inputs, on)
    w = timedelta(days=params.dose_window_days)
    infusions = [i for i in inputs.infusions if i.day <= on]
    if not infusions:
        if stopped is not None:
            return []
        target = inputs.enrolment
        status = "overdue" if on > target + w else "due" if on >= target - w else "upcoming"
        return [_item(inputs, "dose", status, f"dose 1: window {target - w}..{target + w}", target,
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
            out.append(_item(inputs, "dose", "overdue",
                             f"dose {dose.number} missed: window {opens}..{closes} closed without an infusion",
                             dose.target, dose=dose.number, opens=opens, target=dose.target, closes=closes))
        elif dose.status == "pending" and not pending_seen:
            pending_seen = True
            status = "due" if opens <= on else "upcoming"
            out.append(_item(inputs, "dose", status, f"dose {dose.number}: window {opens}..{closes}", dose.target,
                             dose=dose.number, opens=opens, target=dose.target, closes=closes))
    return out


def lab_items(inputs: WorklistInputs, params: Protocol, on: date) -> list[dict[str, Any]]:
    if not inputs.infusions or (inputs.death is not None and inputs.death <= on):
        return []
    d1 = min(i.day for i in inputs.infusions)
    day = (on - d1).days + 1  # MSC day: D1 = 1
    segment = next((s for s in lab_schedule(params.lab_schedule) if day <= s[2]), None)
    if segment is None or day < 1:
        return []
    count, per, until = segment
    if day < per:  # not a full period since D1 yet
        return []
    start = on - timedelta(days=per - 1)
    counts = sorted(d for d, complete in inputs.labs if start <= d <= on and complete)
    if len(counts) >= count:
        return []
    last = max((d for d, _ in inputs.labs if d <= on), default=None)
    return [_item(inputs, "labs", "overdue",
                  f"{len(counts)} blood count(s) (ANC/PLT/Hb) in {start}..{on}; the schedule asks {count} per {per} "
                  f"days to D{until} (last lab {last or 'none'})", on, msc_day=day)]


def sae_items(inputs: WorklistInputs, params: Protocol, at: datetime) -> list[dict[str, Any]]:
    out = []
    for ae in inputs.saes:
        clocks = sae_clocks(ae.awareness, params, seriousness=ae.serious, relatedness=ae.related,
                            expected=ae.expected, sponsor_reported=ae.recorded, as_of=at, refs=(ae.ref,))
        for clock in (clocks.sponsor, clocks.regulator, clocks.regulator_complete):
            if clock is None or clock.reported is not None:  # reported (on time or late): nothing left to do
                continue
            status = "overdue" if clock.due < at else "due"
            out.append(_item(inputs, "sae", status, f"{clock.name} report of '{ae.term}' ({ae.ref})",
                             clock.due, ref=ae.ref))
    return out


def open_queries(review: Review | None) -> list[dict[str, Any]]:
    """The open queries of a review stream, as the worklist needs them (``qid``, ``ref``, ``text``, ``opened_at``)."""
    if review is None:
        return []
    return [{"qid": q.qid, "ref": q.ref, "text": q.text, "opened_at": q.opened_at}
            for q in review.queries.values() if q.status == "open"]


def query_items(inputs: WorklistInputs, queries: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    return [_item(inputs, "query", "open", f"{q['qid']} on {q['ref']}: {q['text']}", None, qid=q["qid"],
                  age_days=max(0, (at - q["opened_at"]).days)) for q in queries]


def day_items(inputs: WorklistInputs, params: Protocol, on: date) -> list[dict[str, Any]]:
    """The items that depend on the day only (doses, labs, the signature), not on the time of day."""
    items = [*dose_items(inputs, params, on), *lab_items(inputs, params, on)]
    if inputs.enrolment is not None and not inputs.signed:
        items.append(_item(inputs, "signature", "unsigned", "casebook has no valid investigator signature", None))
    return items


def items_of(inputs: WorklistInputs, queries: list[dict[str, Any]], params: Protocol, on: date, at: datetime,
             on_day: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every item of one patient, in the order :func:`worklist` lists them (``on_day``: :func:`day_items`
    for ``on`` if already computed)."""
    fixed = day_items(inputs, params, on) if on_day is None else on_day
    signature = [i for i in fixed if i["what"] == "signature"]
    return [*(i for i in fixed if i["what"] != "signature"), *sae_items(inputs, params, at),
            *query_items(inputs, queries, at), *signature]


def worklist(patient: Patient, review: Review | None, params: Protocol, on: date, at: datetime,
             recorded_at: Mapping[int, datetime], signed: bool) -> list[dict[str, Any]]:
    """Every item of one patient (see the module docstring); ``signed``: a valid signature covers it."""
    return items_of(WorklistInputs.of(patient, recorded_at, signed), open_queries(review), params, on, at)


def sort_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(item: dict[str, Any]) -> tuple[int, datetime, int, str]:
        due = item["due"]
        when = FAR if due is None else due if isinstance(due, datetime) else end_of(due)
        return RANK[item["status"]], when, -item.get("age_days", 0), item["subject"]

    return sorted(items, key=key)
