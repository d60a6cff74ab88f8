"""The per-kind index of the Patient aggregate and the cached field lists of records answer exactly
what the full scans they replace answered, on a demo cohort with corrections and voids."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs
import pytest

from pgf_events.application import TrialConduct
from pgf_events.demo import commands_for, plan_cohort
from pgf_events.domain import values as vo
from pgf_events.domain.kinds import KINDS
from pgf_events.domain.patient import Patient
from pgf_events.projections.derive import fold
from pgf_events.store import parse_url


def _scan_active(patient: Patient, record_type: type[vo.Record]) -> list[tuple[int, Any]]:
    """The definition before the index: every entry, in order."""
    return [
        (e.version, e.record) for e in patient.entries.values()
        if not e.voided and isinstance(e.record, record_type) and e.kind == record_type.KIND
    ]


def _scan_dates(record: vo.Record) -> list[tuple[str, date]]:
    out = []
    for a in attrs.fields(type(record)):
        value = getattr(record, a.name)
        if isinstance(value, datetime):
            out.append((a.name, value.date()))
        elif isinstance(value, date):
            out.append((a.name, value))
    return out


@pytest.fixture(scope="module")
def cohort() -> list[Patient]:
    app = TrialConduct(parse_url("memory://"))
    patients = []
    for subject in plan_cohort(12, seed=3):
        app.execute(commands_for(subject), user="tester")
        patients.append(app.patient(subject.code))
    # Also a void of a void (reinstatement) and a voided death.
    p = patients[0].subject
    ref = app.record("lab", p, {"date": "2025-06-01", "anc": 1.2}, user="tester").ref
    void = app.void(ref, "wrong patient", user="tester").ref
    app.void(void, "it was the right patient after all", user="tester")
    death = app.record("death", patients[1].subject, {"date": "2026-01-02"}, user="tester").ref
    app.void(death, "entered on the wrong patient", user="tester")
    patients[0], patients[1] = app.patient(p), app.patient(patients[1].subject)
    assert all(fold(app.stream(x.subject))[0] == x for x in patients)  # replay equals the live state
    app.close()
    return patients


def test_active_and_the_first_record_of_a_kind_match_a_full_scan(cohort: list[Patient]) -> None:
    seen_voided = False
    for patient in cohort:
        for record_type in (k.record for k in KINDS.values()):
            expected = _scan_active(patient, record_type)
            assert patient.active(record_type) == expected
            assert patient._first(record_type) == (expected[0] if expected else None)
        seen_voided |= any(e.voided for e in patient.entries.values())
    assert seen_voided
    assert cohort[1].death is None  # the voided death does not count


def test_record_dates_and_latest_date_match_a_scan_of_every_field(cohort: list[Patient]) -> None:
    for patient in cohort:
        for _, record in patient.clinical_records():
            assert record.dates() == _scan_dates(record)
            assert record.latest_date() == max(day for _, day in _scan_dates(record))
