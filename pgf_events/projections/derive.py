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
from datetime import date, datetime
from typing import Any, TypeVar

import attrs
import orjson

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules.inputs import InfusionPoint, LabPoint, TransfusionPoint
from pgf_events.formatting import iso
from pgf_events.projections import clinical, follow_up, sections
from pgf_events.protocol import Protocol

T = TypeVar("T")




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


def _points(patient: Patient) -> tuple[list[InfusionPoint], list[LabPoint], list[TransfusionPoint]]:
    """The standing infusions, labs and transfusions as the rules take them (already validated records)."""
    ref = patient.ref
    infusions = [_trusted(InfusionPoint, day=r.date, ref=ref(v), cells=r.cells, weight_kg=r.weight_kg)
                 for v, r in patient.active(vo.Infusion)]
    labs = [_trusted(LabPoint, day=r.date, ref=ref(v), anc=r.anc, plt=r.plt, hb=r.hb)
            for v, r in patient.active(vo.LabPanel)]
    transfusions = [_trusted(TransfusionPoint, day=r.date, ref=ref(v), product=r.product)
                    for v, r in patient.active(vo.Transfusion)]
    return infusions, labs, transfusions


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
    last_alive, latest_versions = evaluation_date(patient)
    as_of = last_alive if cutoff is None else max(cutoff, last_alive)
    known_at = max(recorded_at.values()) if recorded_at else None

    screenings = patient.active(vo.Screening)
    consents = patient.active(vo.Consent)
    enrolment = patient.enrolment
    withdrawal = patient.withdrawal
    death = patient.death
    result = patient.eligibility(params)

    infusions, labs, transfusions = _points(patient)

    dosing = sections.dosing.derive(patient, infusions, params, as_of)
    msc_d1 = date.fromisoformat(dosing["msc_d1"]) if dosing["msc_d1"] else None
    timeline = follow_up.timeline(patient, params, msc_d1=msc_d1, as_of=last_alive, latest=latest_versions)
    episodes, baseline_episodes = sections.infections.derive(patient, msc_d1)
    return PatientState(
        subject=patient.subject,
        protocol_version=params.version,
        version=patient.version,
        evaluation_date=iso(as_of),
        cutoff=iso(cutoff),
        site=reg.site,
        sex=reg.sex,
        transplant_date=reg.transplant_date.isoformat(),
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
        endpoints=sections.endpoints.derive(labs, transfusions, params, transplant=reg.transplant_date, msc_d1=msc_d1,
                                     as_of=as_of, exit_at=clinical.exit_event(patient)),
        gvhd=sections.gvhd.derive(patient, timeline, params, msc_d1),
        infections=len(episodes),
        infection_episodes=episodes,
        baseline_infections=baseline_episodes,
        infection_followup=follow_up.infection_followup(episodes, timeline),
        safety=sections.safety.derive(patient, labs, params, msc_d1, recorded_at or {}, known_at, as_of),
        alive=death is None,
        death_date=iso(death[1].date) if death else None,
        relapsed=timeline.relapse_date is not None,
        relapse_date=iso(timeline.relapse_date),
        survival=follow_up.survival(timeline, params),
    )


def derive_echo(patient: Patient, params: Protocol) -> dict[str, Any]:
    """Only what ``pgf record``'s echo compares (:func:`pgf_events.projections.changes.changes`),
    JSON-shaped, each value by the same functions :func:`derive_patient` uses, equal to its
    ``as_json()`` on these keys: eligibility status, enrolment, dosing, the hemogram endpoints,
    death, relapse, withdrawal. Spares the sections the echo never shows (GVHD, infections, safety,
    survival) and the copy of the whole state, at every record a user enters."""
    reg = patient.registration
    last_alive, latest_versions = evaluation_date(patient)
    enrolment, withdrawal, death = patient.enrolment, patient.withdrawal, patient.death
    infusions, labs, transfusions = _points(patient)
    dosing = sections.dosing.derive(patient, infusions, params, last_alive)
    msc_d1 = date.fromisoformat(dosing["msc_d1"]) if dosing["msc_d1"] else None
    relapse = follow_up.timeline(patient, params, msc_d1=msc_d1, as_of=last_alive,
                                 latest=latest_versions).relapse_date
    doc = {
        "eligibility": {"status": patient.eligibility(params).status},
        "enrolled": enrolment is not None,
        "enrolment_date": iso(enrolment[1].date) if enrolment else None,
        "withdrawn": withdrawal is not None,
        "withdrawal_date": iso(withdrawal[1].date) if withdrawal else None,
        "dosing": dosing,
        "endpoints": sections.endpoints.derive(labs, transfusions, params, transplant=reg.transplant_date,
                                               msc_d1=msc_d1, as_of=last_alive, exit_at=clinical.exit_event(patient)),
        "death_date": iso(death[1].date) if death else None,
        "relapsed": relapse is not None,
        "relapse_date": iso(relapse),
    }
    return orjson.loads(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS))  # type: ignore[no-any-return]
