"""Every per-patient derived value, as one pure function of (the patient's events, the protocol).

:func:`derive_patient` adapts the aggregate's *effective* records (voided ones are gone, corrected
ones carry their new values: :class:`~pgf_events.domain.patient.Patient` already resolves the
chain) into the rule inputs (``LabPoint``, ``TransfusionPoint``, ``InfusionPoint``, each with the
reference ``S001#N`` of its source event) and calls the rule functions of
``pgf_events.domain.rules``. Every derived value keeps the refs of the events it came from, and the
whole state names the protocol version it was computed under.

Evaluation date. Rules that depend on "today" (a dosing window closes, platelet NR once the
evaluation day has passed, censoring at the last date known alive) are evaluated at the
patient's **latest effective clinical date**: the latest clinical date held by any standing record
(and the transplant date; never an AE awareness time), i.e. that patient's data cut-off; or, with
a cohort cut-off C (``cutoff``), at C with every record dated after C hidden
(:mod:`pgf_events.projections.clinical`). Never the wall clock: so a projection
is a pure function of the event log. Rebuilding gives identical output, an ``--as-of`` answer is
the same function over a prefix of the log, and a patient's derived state changes only when one
of their own events is recorded. Consequence: a dose window that closed in real life but after
the latest recorded fact stays *pending* until some later fact is recorded.

SAE clocks run from the recorded awareness time (``--aware``, else the onset day). The report to
the sponsor is the recording of the serious AE in this system: its recorded time (the event
timestamp, ``recorded_at``) is compared with the due time. Nothing records regulator
submissions, so those clocks show as not met once the log's latest recorded time for the patient
is past their due time, and pending before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any, TypeVar

import attrs
import orjson

from pgf_events.domain import values as vo
from pgf_events.domain.patient import CORRECTION, Patient
from pgf_events.domain.rules import ctcae, gvhd
from pgf_events.domain.rules.inputs import InfusionPoint, LabPoint, TransfusionPoint
from pgf_events.domain.rules.safety import RELATED, sae_clocks
from pgf_events.domain.vocabulary import ae_outcome_term
from pgf_events.projections import clinical, follow_up
from pgf_events.protocol import Protocol

T = TypeVar("T")


def iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


@attrs.frozen
class PatientState:
    """One patient's derived state; field order is the JSON key order of ``pgf status --json``."""

    subject: str
    protocol_version: str
    version: int
    evaluation_date: str | None
    cutoff: str | None
    site: str
    sex: str
    transplant_date: str
    eligibility: dict[str, Any]
    screened: bool
    screening_date: str | None
    consented: bool
    consent_date: str | None
    enrolled: bool
    enrolment_date: str | None
    pgf_type: str | None
    treated: bool
    course_completed: bool
    withdrawn: bool
    withdrawal_date: str | None
    withdrawal_reason: str | None
    dosing: dict[str, Any]
    endpoints: dict[str, Any]
    gvhd: dict[str, Any]
    infections: int
    infection_episodes: list[dict[str, Any]]
    baseline_infections: list[dict[str, Any]]
    infection_followup: dict[str, Any]
    safety: dict[str, Any]
    alive: bool
    death_date: str | None
    relapsed: bool
    relapse_date: str | None
    survival: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """A fresh JSON-shaped copy (lists, str keys): exactly what a JSON column gives back."""
        # orjson: the same document as a json.dumps/json.loads round trip, ten times faster.
        return orjson.loads(orjson.dumps(attrs.asdict(self, recurse=False), option=orjson.OPT_NON_STR_KEYS))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PatientState:
        return cls(**{a.name: copy.deepcopy(doc[a.name]) for a in attrs.fields(cls)})


STATE_KEYS: tuple[str, ...] = tuple(a.name for a in attrs.fields(PatientState))


def fold(events: Iterable[Any], patient: Patient | None = None,
         recorded_at: dict[int, datetime] | None = None) -> tuple[Patient | None, dict[int, datetime]]:
    """Apply stored events in order (``event.mutate``), keeping each version's recorded time."""
    recorded = dict(recorded_at or {})
    for event in events:
        patient = event.mutate(patient)
        recorded[event.originator_version] = event.timestamp
    return patient, recorded


def _trusted(cls: type[T], **values: Any) -> T:
    """A rule input built from stored records, which were validated when recorded: the point's own
    validators would only check them again (a third of the derivation time on lab-heavy streams)."""
    point = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(point, name, value)
    return point


def evaluation_date(patient: Patient) -> tuple[date, list[int]]:
    """The patient's own data cut-off: the latest clinical date of any standing record (or the
    transplant), and the versions of the records holding that date."""
    return clinical.latest_clinical_date(patient)


def derive_patient(patient: Patient, params: Protocol,
                   recorded_at: Mapping[int, datetime] | None = None, *, cutoff: date | None = None) -> PatientState:
    """Every derived value of one patient (see the module docstring for the evaluation date).

    ``recorded_at`` maps stream versions to recorded (UTC) times; it is only needed for the SAE
    sponsor clock, which is otherwise reported as not yet known. ``cutoff``: the cohort data
    cut-off date (clinical facts after it are ignored; windows closed by it count as closed).
    """
    if cutoff is not None:
        patient = clinical.cut_off(patient, cutoff)
    reg = patient.registration
    ref = patient.ref
    last_alive, latest_versions = evaluation_date(patient)
    as_of = last_alive if cutoff is None else max(cutoff, last_alive)
    known_at = max(recorded_at.values()) if recorded_at else None

    screenings = patient.active(vo.Screening)
    consents = patient.active(vo.Consent)
    enrolment = patient.enrolment
    withdrawal = patient.withdrawal
    death = patient.death
    result = patient.eligibility(params)

    infusions = [_trusted(InfusionPoint, day=r.date, ref=ref(v), cells=r.cells, weight_kg=r.weight_kg)
                 for v, r in patient.active(vo.Infusion)]
    labs = [_trusted(LabPoint, day=r.date, ref=ref(v), anc=r.anc, plt=r.plt, hb=r.hb)
            for v, r in patient.active(vo.LabPanel)]
    transfusions = [_trusted(TransfusionPoint, day=r.date, ref=ref(v), product=r.product)
                    for v, r in patient.active(vo.Transfusion)]

    dosing = clinical.dosing(patient, infusions, params, as_of)
    msc_d1 = date.fromisoformat(dosing["msc_d1"]) if dosing["msc_d1"] else None
    timeline = follow_up.timeline(patient, params, msc_d1=msc_d1, as_of=last_alive, latest=latest_versions)
    episodes, baseline_episodes = [], []
    for v, r in sorted(patient.active(vo.Infection), key=lambda vr: (vr[1].onset, vr[0])):
        episode = {"onset": iso(r.onset), "site": r.site, "grade": r.grade, "organism": r.organism, "ref": ref(v)}
        # v2: an infection with onset before D1 is prevalent at baseline, never incident.
        (baseline_episodes if msc_d1 is not None and r.onset < msc_d1 else episodes).append(episode)
    return PatientState(
        subject=patient.subject,
        protocol_version=params.version,
        version=patient.version,
        evaluation_date=iso(as_of),
        cutoff=iso(cutoff),
        site=reg.site,
        sex=reg.sex,
        transplant_date=iso(reg.transplant_date),
        eligibility={
            "status": result.status, "unmet": list(result.unmet), "unassessed": list(result.unassessed),
            "reasons": dict(result.reasons), "refs": list(result.refs),
        },
        screened=bool(screenings),
        screening_date=iso(max((s.date for _, s in screenings), default=None)),
        consented=bool(consents),
        consent_date=iso(min((c.date for _, c in consents), default=None)),
        enrolled=enrolment is not None,
        enrolment_date=iso(enrolment[1].date) if enrolment else None,
        pgf_type=enrolment[1].pgf_type if enrolment else None,
        treated=dosing["given"] > 0,
        course_completed=dosing["completed"],
        withdrawn=withdrawal is not None,
        withdrawal_date=iso(withdrawal[1].date) if withdrawal else None,
        withdrawal_reason=withdrawal[1].reason if withdrawal else None,
        dosing=dosing,
        endpoints=clinical.endpoints(labs, transfusions, params, transplant=reg.transplant_date, msc_d1=msc_d1,
                                     as_of=as_of, exit_at=clinical.exit_event(patient)),
        gvhd=_gvhd(patient, timeline, params, msc_d1),
        infections=len(episodes),
        infection_episodes=episodes,
        baseline_infections=baseline_episodes,
        infection_followup=follow_up.infection_followup(episodes, timeline),
        safety=_safety(patient, labs, params, msc_d1, recorded_at or {}, known_at, as_of),
        alive=death is None,
        death_date=iso(death[1].date) if death else None,
        relapsed=timeline.relapse_date is not None,
        relapse_date=iso(timeline.relapse_date),
        survival=follow_up.survival(timeline, params),
    )


# ------------------------------------------------------------------------------------------ gvhd

def _gvhd(patient: Patient, timeline: follow_up.Timeline, params: Protocol, msc_d1: date | None) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------- safety

def _safety(patient: Patient, labs: list[LabPoint], params: Protocol, msc_d1: date | None,
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
    if entry.original is not None and getattr(entry.original, "serious", ()):
        return recorded_at.get(version)
    pending = list(entry.children)
    while pending:  # corrections (and corrections of corrections) in recording order
        c = patient.entries[pending.pop(0)]
        if c.kind == CORRECTION and not c.voided:
            if c.changes.get("serious"):
                return recorded_at.get(c.version)
            pending = sorted(pending + c.children)
    return None
