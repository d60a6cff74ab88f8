"""Laws (hypothesis): the hemogram inputs kept event by event (issue 18) give, after every event of
random histories, exactly what deriving the whole patient gives: the endpoint dates, and the whole
lineage outcome (dates, refs in order, reasons); and ``pgf audit exceptions`` built on them lists
the same rows as the old path, which derived the whole patient before and after every edit."""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from pgf_events.application import TrialConduct
from pgf_events.audit import exceptions
from pgf_events.domain import values as vo
from pgf_events.domain.errors import PgfError
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint
from pgf_events.domain.rules.response import lineage_outcomes
from pgf_events.projections import clinical
from pgf_events.projections.derive import derive_patient
from pgf_events.projections.hemogram_inputs import ENDPOINTS, HemogramInputs
from pgf_events.protocol import DEFAULT_PROTOCOL, PRESETS, Protocol
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.helpers import USER, enrolled, infuse
from tests.projections.test_property import DAYS, _apply, _log, _target

V1 = Protocol(**PRESETS["v1"])
subject = st.sampled_from(("S001", "S002"))
day = st.sampled_from(DAYS)
near = st.sampled_from(DAYS[:12] + DAYS[28:30])  # early March mostly (several labs a day, runs of days), later too
lab = st.tuples(st.just("lab"), subject, near, st.sampled_from([0.2, 0.6, 1.5, 2.0, 3.0]), st.sampled_from([5, 25, 60, 120, 150]),
                st.sampled_from([60, 75, 90, 120, 130]))
hemogram_actions = st.one_of(
    lab, lab, lab, lab, lab,
    st.tuples(st.just("infusion"), subject, day, st.floats(4e7, 8e7), st.floats(50, 70)),
    st.tuples(st.just("transfusion"), subject, near, st.sampled_from(["rbc", "platelets"])),
    st.tuples(st.just("contact"), subject, day, st.sampled_from(["free", "relapsed"])),
    st.tuples(st.just("death"), subject, day),
    st.tuples(st.just("withdraw"), subject, day),
    st.tuples(st.just("correct"), subject, st.integers(0, 1000), st.floats(0, 3, allow_nan=False)),
    st.tuples(st.just("redate"), subject, st.integers(0, 1000), near, st.sampled_from(["date", "plt", "hb"])),
    st.tuples(st.just("void"), subject, st.integers(0, 1000)),
    st.tuples(st.just("void"), subject, st.integers(0, 1000)),
)


def _act(app: TrialConduct, action: tuple[Any, ...]) -> None:
    if action[0] != "redate":
        _apply(app, action)
        return
    _, who, pick, new_day, name = action  # a correction that moves a record to another day, or another value
    version = _target(app, who, pick)
    value = {"date": new_day, "plt": 7 + pick % 90, "hb": 60 + pick % 70}[name]
    entry = app.patient(who).entries.get(version)
    app.correct(f"{who}#{version}", {name if entry and entry.kind == "lab" else "date": value}, "moved", user=USER)


def _full(patient: Patient, params: Protocol) -> dict[str, date]:
    """The reference: derive the whole patient (what exceptions did before issue 18)."""
    endpoints = derive_patient(patient, params).endpoints
    return {label: date.fromisoformat(endpoints[key]) for key, label in ENDPOINTS if endpoints.get(key)}


def _outcomes(patient: Patient, params: Protocol, kept: HemogramInputs | None) -> Any:
    ref, reg = patient.ref, patient.registration
    labs = [LabPoint(day=r.date, ref=ref(v), anc=r.anc, plt=r.plt, hb=r.hb)
            for v, r in patient.active(vo.LabPanel)]
    transfusions = [TransfusionPoint(day=r.date, ref=ref(v), product=r.product)
                    for v, r in patient.active(vo.Transfusion)]
    d1 = derive_patient(patient, params).dosing["msc_d1"]
    exit_at = clinical.exit_event(patient)
    as_of = clinical.latest_clinical_date(patient)[0]
    if kept is not None:
        assert (list(kept.labs.values()), list(kept.transfusions.values())) == (labs, transfusions)
        assert kept.evaluation_date(patient) == as_of
    return lineage_outcomes(labs, transfusions, params, transplant_day=reg.transplant_date,
                            msc_d1=date.fromisoformat(d1) if d1 else None, as_of=as_of,
                            exit_event=exit_at[:2] if exit_at else None, daily=None if kept is None else kept.daily)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hemogram_actions, min_size=25, max_size=70), st.sampled_from([DEFAULT_PROTOCOL, V1]))
def test_kept_inputs_give_what_deriving_the_whole_patient_gives(history: list[tuple[Any, ...]], params: Protocol) -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    for who in ("S001", "S002"):
        enrolled(app, who)
        infuse(app, who, "2025-03-01")  # the anchor (MSC D1) of the endpoints
    for action in history:
        with contextlib.suppress(PgfError):  # a rejected command writes nothing
            _act(app, action)
    streams: dict[Any, list[Any]] = {}
    for event in _log(app):
        streams.setdefault(event.originator_id, []).append(event)
    for events in streams.values():
        patient, kept = None, HemogramInputs()
        for event in events:
            patient = event.mutate(patient)
            kept.apply(patient, event)
            found = kept.endpoint_dates(patient, params)
            assert found == _full(patient, params)
            note(f"endpoints found: {len(found)}")
            assert _outcomes(patient, params, kept) == _outcomes(patient, params, None)
        note(f"a day with several labs: {any(len(v[1]) > 1 for v in kept.daily['anc'].values())}")
        # the audit read model's way: folded only up to the last edit (the stream's fold given)
        assert patient is not None
        plain, given_final = (exceptions.PatientExceptions(patient.subject, params, {}) for _ in range(2))
        assert list(given_final.rows(events, final=patient)) == list(plain.rows(events))
        assert given_final.first_seen == plain.first_seen
        note(f"edits: {sum(type(e).__name__ in ('Corrected', 'Voided') for e in events)}")
    # and the audit report on top of them: the same rows as the old path (whole-patient derivations)
    fast = exceptions.exception_rows(app)
    old = HemogramInputs.endpoint_dates
    try:
        HemogramInputs.endpoint_dates = lambda self, patient, p: _full(patient, p)  # type: ignore[method-assign]
        assert exceptions.exception_rows(app) == fast
    finally:
        HemogramInputs.endpoint_dates = old  # type: ignore[method-assign]


def test_a_voided_void_puts_the_lab_back_in_its_place() -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    enrolled(app, "S001")
    for d, anc in (("2025-03-01", 0.4), ("2025-03-02", 0.9), ("2025-03-02", 0.7)):
        app.record("lab", "S001", {"date": d, "anc": anc}, user=USER)
    app.void("S001#6", "wrong patient", user=USER)
    app.record("lab", "S001", {"date": "2025-03-03", "anc": 1.2}, user=USER)
    app.void("S001#8", "the void was a mistake", user=USER)
    app.correct("S001#7", {"date": "2025-03-05"}, "wrong day", user=USER)
    patient, kept = None, HemogramInputs()
    for event in app.stream("S001"):
        patient = event.mutate(patient)
        kept.apply(patient, event)
    assert patient is not None
    assert list(kept.labs) == [5, 6, 7, 9]
    assert kept.daily["anc"] == {date(2025, 3, 1): (0.4, ("S001#5",)), date(2025, 3, 2): (0.9, ("S001#6",)),
                                 date(2025, 3, 5): (0.7, ("S001#7",)), date(2025, 3, 3): (1.2, ("S001#9",))}
    assert _outcomes(patient, DEFAULT_PROTOCOL, kept) == _outcomes(patient, DEFAULT_PROTOCOL, None)
