"""The safety section: adverse events with their SAE clocks and lab worsenings (derived), the report
row and the cohort summary (events by term and grade, clocks met/missed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.entries import CORRECTION
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules import ctcae
from pgf_events.domain.rules.inputs import LabPoint
from pgf_events.domain.rules.safety import RELATED, sae_clocks
from pgf_events.domain.vocabulary import ae_outcome_term
from pgf_events.formatting import iso
from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row, rate
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "evaluation_date", "enrolled", "treated", "safety",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "adverse_events", "serious", "max_grade", "lab_adverse_events", "clocks_missed",
)
HEADERS = {"adverse_events": "AEs", "lab_adverse_events": "lab AEs"}


def derive(patient: Patient, labs: list[LabPoint], params: Protocol, msc_d1: date | None,
            recorded_at: Mapping[int, datetime], known_at: datetime | None, as_of: date) -> dict[str, Any]:
    events = []
    zone = params.site_zone(patient.registration.site)
    for v, r in sorted(patient.active(vo.AdverseEvent), key=lambda vr: (vr[1].onset, vr[0])):
        item: dict[str, Any] = {
            "ref": patient.ref(v), "term": r.term, "grade": r.grade, "onset": iso(r.onset), "end": iso(r.end),
            "serious": list(r.serious), "related": r.related, "expected": r.expected, "aware": iso(r.aware),
            "action": r.action, "outcome": r.outcome, "outcome_term": ae_outcome_term(r.outcome), "clocks": None,
        }
        if r.serious:
            # v2: without an awareness time the clocks run from the onset at 00:00 site time, flagged;
            # a missing expectedness is treated as unexpected (conservative) and listed.
            awareness = r.aware or datetime.combine(r.onset, time.min, tzinfo=zone)
            clocks = sae_clocks(
                awareness, params, seriousness=r.serious, relatedness=r.related, expected=r.expected is True,
                sponsor_reported=_reported_serious(patient, v, recorded_at),
                as_of=known_at or as_of, refs=(patient.ref(v),),
            )
            item["susar"] = clocks.susar
            item["awareness_missing"] = r.aware is None
            item["expectedness_missing"] = r.expected is None and r.related in RELATED
            item["clocks"] = [
                {"name": c.name, "due": iso(c.due), "reported": iso(c.reported), "met": c.met}
                for c in (clocks.sponsor, clocks.regulator, clocks.regulator_complete) if c is not None
            ]
        events.append(item)
    baseline = msc_d1 or (patient.enrolment[1].date if patient.enrolment else None)
    worst: dict[str, dict[str, Any]] = {}
    if baseline is not None:
        for w in ctcae.lab_worsenings(labs, baseline_day=baseline):
            seen = worst.get(w.term)
            if seen is None:
                worst[w.term] = {"term": w.term, "analyte": w.analyte, "onset": iso(w.day), "grade": w.grade,
                                 "date": iso(w.day), "value": w.value, "baseline_grade": w.baseline_grade,
                                 "baseline_date": iso(w.baseline_day), "refs": list(w.refs)}
            elif w.grade > seen["grade"]:
                seen.update(grade=w.grade, date=iso(w.day), value=w.value, refs=list(w.refs))
    return {
        "adverse_events": events,
        "serious": sum(1 for e in events if e["serious"]),
        "max_grade": max((e["grade"] for e in events), default=None),
        "lab_baseline_date": iso(baseline),
        "lab_adverse_events": [worst[t] for t in sorted(worst)],
    }


def _reported_serious(patient: Patient, version: int, recorded_at: Mapping[int, datetime]) -> datetime | None:
    """When the AE first stood as serious in this system: its own recording, or the correction making it so."""
    entry = patient.entries[version]
    if entry.original is not None and getattr(entry.original, "serious", None):
        return recorded_at.get(version)
    pending = list(entry.children)
    while pending:  # corrections (and corrections of corrections) in recording order
        c = patient.entries[pending.pop(0)]
        if c.kind == CORRECTION and not c.voided:
            if c.changes.get("serious"):
                return recorded_at.get(c.version)
            pending = sorted(pending + c.children)
    return None


def row(s: Row) -> dict[str, Any]:
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

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
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


SECTION = Section('safety', KEYS, row, summary, COLUMNS, HEADERS)
