"""The protocol rules enforced when recording, through the application (in-memory backend)."""

from __future__ import annotations

import pytest

from pgf_events.application import BatchRejected, Command, TrialConduct
from pgf_events.domain.errors import (
    DuplicatePatientError,
    EventNotFoundError,
    PatientNotFoundError,
    RuleViolation,
    ValidationError,
)
from tests.helpers import ELIGIBLE_SCREEN, USER, enrolled, infuse, register


def test_unknown_subject_is_rejected(app: TrialConduct) -> None:
    with pytest.raises(PatientNotFoundError, match="S404 is not registered"):
        app.record("lab", "S404", {"date": "2025-03-01", "anc": 1}, user=USER)


def test_duplicate_registration_is_rejected_case_insensitively(app: TrialConduct) -> None:
    register(app, "S001")
    with pytest.raises(DuplicatePatientError):
        register(app, "s001")


def test_subject_codes_are_validated(app: TrialConduct) -> None:
    for bad in ("", "S 01", "S#1", "x" * 40, "-S1"):
        with pytest.raises(ValidationError, match="subject code"):
            register(app, bad)


def test_future_clinical_dates_are_rejected(app: TrialConduct) -> None:
    register(app)  # clock is 2026-01-15 12:00 UTC; dates up to UTC+14 (2026-01-16) are 'today' somewhere
    app.record("lab", "S001", {"date": "2026-01-16", "anc": 1}, user=USER)
    with pytest.raises(ValidationError, match="in the future"):
        app.record("lab", "S001", {"date": "2026-01-17", "anc": 1}, user=USER)


def test_dates_before_birth_are_rejected(app: TrialConduct) -> None:
    register(app)
    with pytest.raises(ValidationError, match="before the birth date"):
        app.record("lab", "S001", {"date": "1979-12-31", "anc": 1}, user=USER)


def test_registration_defaults_its_date_to_the_recording_day(app: TrialConduct) -> None:
    register(app)
    assert app.patient("S001").registration.date.isoformat() == "2026-01-15"


def test_enrolment_needs_eligibility_to_be_complete(app: TrialConduct) -> None:
    register(app)
    app.record("consent", "S001", {"date": "2025-02-18"}, user=USER)
    with pytest.raises(RuleViolation, match="pending"):
        app.record("enrol", "S001", {"date": "2025-02-24"}, user=USER)


def test_enrolment_of_an_ineligible_patient_is_rejected_with_the_reason(app: TrialConduct) -> None:
    register(app)
    app.record("consent", "S001", {"date": "2025-02-18"}, user=USER)
    app.record("screen", "S001", {**ELIGIBLE_SCREEN, "kps": 60}, user=USER)
    with pytest.raises(RuleViolation, match="not eligible: KPS 60 is not above 60"):
        app.record("enrol", "S001", {"date": "2025-02-24"}, user=USER)


def test_enrolment_needs_consent(app: TrialConduct) -> None:
    register(app)
    app.record("screen", "S001", ELIGIBLE_SCREEN, user=USER)
    with pytest.raises(RuleViolation, match="IN6"):
        app.record("enrol", "S001", {"date": "2025-02-24"}, user=USER)


def test_enrolment_before_consent_date_is_rejected(app: TrialConduct) -> None:
    register(app)
    app.record("consent", "S001", {"date": "2025-02-25"}, user=USER)
    app.record("screen", "S001", ELIGIBLE_SCREEN, user=USER)
    with pytest.raises(RuleViolation, match="before informed consent"):
        app.record("enrol", "S001", {"date": "2025-02-24"}, user=USER)


def test_age_is_derived_from_birth_date_at_screening(app: TrialConduct) -> None:
    register(app, birth_date="1960-01-01")  # 65 at screening
    app.record("consent", "S001", {"date": "2025-02-18"}, user=USER)
    app.record("screen", "S001", ELIGIBLE_SCREEN, user=USER)
    with pytest.raises(RuleViolation, match="age 65"):
        app.record("enrol", "S001", {"date": "2025-02-24"}, user=USER)


def test_a_second_enrolment_is_rejected(app: TrialConduct) -> None:
    enrolled(app)
    with pytest.raises(RuleViolation, match="already enrolled"):
        app.record("enrol", "S001", {"date": "2025-02-25"}, user=USER)


def test_infusion_before_enrolment_is_rejected(app: TrialConduct) -> None:
    register(app)
    with pytest.raises(RuleViolation, match="not enrolled"):
        infuse(app, "S001", "2025-02-25")


def test_infusion_dated_before_the_enrolment_is_rejected(app: TrialConduct) -> None:
    enrolled(app)
    with pytest.raises(RuleViolation, match="before enrolment"):
        infuse(app, "S001", "2025-02-23")


def test_at_most_four_doses(app: TrialConduct) -> None:
    enrolled(app)
    for day in ("2025-02-25", "2025-03-04", "2025-03-11", "2025-03-18"):
        infuse(app, "S001", day)
    with pytest.raises(RuleViolation, match=r"dose 5 of 4 planned .*--deviation"):
        infuse(app, "S001", "2025-03-25")


def test_doses_must_be_at_least_five_days_apart(app: TrialConduct) -> None:
    enrolled(app)
    infuse(app, "S001", "2025-02-25")
    with pytest.raises(RuleViolation, match="4 day"):
        infuse(app, "S001", "2025-03-01")
    infuse(app, "S001", "2025-03-02")  # exactly 5 days: allowed


def test_a_late_entered_infusion_is_checked_against_both_neighbours(app: TrialConduct) -> None:
    enrolled(app)
    infuse(app, "S001", "2025-02-25")
    infuse(app, "S001", "2025-03-11")
    with pytest.raises(RuleViolation, match=r"3 days before S001#\d \(minimum 5\)"):
        infuse(app, "S001", "2025-03-08")
    infuse(app, "S001", "2025-03-04")


def test_a_voided_infusion_no_longer_counts(app: TrialConduct) -> None:
    enrolled(app)
    ref = infuse(app, "S001", "2025-02-25")
    app.void(ref, "entered twice", user=USER)
    infuse(app, "S001", "2025-02-26")


def test_no_infusion_after_withdrawal(app: TrialConduct) -> None:
    enrolled(app)
    infuse(app, "S001", "2025-02-25")
    app.record("withdraw", "S001", {"date": "2025-03-01", "reason": "consent withdrawn"}, user=USER)
    with pytest.raises(RuleViolation, match="withdrawn"):
        infuse(app, "S001", "2025-03-04")
    # follow-up after withdrawal is still recorded
    app.record("lab", "S001", {"date": "2025-03-05", "anc": 0.8}, user=USER)


def test_nothing_clinical_after_death_but_corrections_and_voids(app: TrialConduct) -> None:
    enrolled(app)
    lab = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.3}, user=USER).ref
    app.record("death", "S001", {"date": "2025-03-10", "cause": "sepsis"}, user=USER)
    for kind, fields in [("lab", {"date": "2025-03-11", "anc": 1}), ("contact", {"date": "2025-04-01", "status": "alive"}),
                         ("relapse", {"date": "2025-03-12"})]:
        with pytest.raises(RuleViolation, match="died on 2025-03-10"):
            app.record(kind, "S001", fields, user=USER)
    with pytest.raises(RuleViolation, match="died on 2025-03-10"):
        infuse(app, "S001", "2025-03-11")
    with pytest.raises(RuleViolation, match="--end 2025-03-12"):
        app.record("ae", "S001", {"onset": "2025-03-08", "term": "rash", "grade": 2, "end": "2025-03-12"}, user=USER)
    infuse(app, "S001", "2025-03-05")  # given before the death, entered late: a real fact, accepted
    with pytest.raises(RuleViolation, match="already recorded"):
        app.record("death", "S001", {"date": "2025-03-10"}, user=USER)
    app.correct(lab, {"anc": "0.35"}, "transcription", user=USER)
    app.void(lab, "wrong patient", user=USER)
    # a result from before the death, entered late, is still accepted
    app.record("lab", "S001", {"date": "2025-03-09", "anc": 0.2}, user=USER)


def test_death_dated_before_existing_records_is_rejected(app: TrialConduct) -> None:
    register(app)
    app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.3}, user=USER)
    with pytest.raises(RuleViolation, match="after the death date"):
        app.record("death", "S001", {"date": "2025-02-28"}, user=USER)


def test_correction_of_unknown_event_or_field_is_rejected(app: TrialConduct) -> None:
    register(app)
    ref = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.3}, user=USER).ref
    with pytest.raises(EventNotFoundError, match="no event S001#9"):
        app.correct("S001#9", {"anc": "1"}, "x", user=USER)
    with pytest.raises(ValidationError, match="has no field cells"):
        app.correct(ref, {"cells": "1"}, "x", user=USER)
    with pytest.raises(ValidationError, match="changes nothing"):
        app.correct(ref, {"anc": "0.3"}, "x", user=USER)
    with pytest.raises(ValidationError, match="must look like S001#3"):
        app.correct("S001-2", {"anc": "1"}, "x", user=USER)


def test_corrections_and_voids_need_a_reason(app: TrialConduct) -> None:
    register(app)
    ref = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.3}, user=USER).ref
    with pytest.raises(ValidationError, match="--reason"):
        app.correct(ref, {"anc": "1"}, "  ", user=USER)
    with pytest.raises(ValidationError, match="--reason"):
        app.void(ref, "", user=USER)


def test_correction_is_revalidated_as_if_newly_entered(app: TrialConduct) -> None:
    register(app)
    ref = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.3}, user=USER).ref
    with pytest.raises(ValidationError, match="out of range"):
        app.correct(ref, {"anc": "101"}, "x", user=USER)
    with pytest.raises(ValidationError, match="in the future"):
        app.correct(ref, {"date": "2027-01-01"}, "x", user=USER)


def test_correction_chain_void_and_reinstate(app: TrialConduct) -> None:
    register(app)
    ref = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4}, user=USER).ref  # S001#2
    first = app.correct(ref, {"anc": "0.5"}, "typo", user=USER)  # S001#3
    assert first.changes == {"anc": 0.5}
    app.correct(first.ref, {"anc": "0.55"}, "typo in the correction", user=USER)  # S001#4 corrects #3
    assert app.patient("S001").entries[2].record.anc == 0.55
    app.void("S001#4", "the second correction was wrong", user=USER)  # S001#5
    assert app.patient("S001").entries[2].record.anc == 0.5
    app.void(ref, "belongs to another patient", user=USER)  # S001#6
    assert app.patient("S001").entries[2].voided
    with pytest.raises(RuleViolation, match="is voided"):
        app.correct(ref, {"anc": "0.6"}, "x", user=USER)
    with pytest.raises(RuleViolation, match="already voided"):
        app.void(ref, "again", user=USER)
    app.void("S001#6", "void was a mistake", user=USER)  # voiding the void reinstates
    assert not app.patient("S001").entries[2].voided


def test_registration_cannot_be_voided_but_can_be_corrected(app: TrialConduct) -> None:
    register(app)
    with pytest.raises(RuleViolation, match="cannot be voided"):
        app.void("S001#1", "x", user=USER)
    app.correct("S001#1", {"weight_kg": "63"}, "re-weighed", user=USER)
    assert app.patient("S001").registration.weight_kg == 63


def test_correcting_birth_date_after_clinical_records_is_checked(app: TrialConduct) -> None:
    register(app)
    app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4}, user=USER)
    with pytest.raises(ValidationError, match="before the birth date"):
        app.correct("S001#1", {"birth_date": "2025-03-05", "transplant_date": "2025-03-06"}, "x", user=USER)


def test_a_batch_is_all_or_nothing_and_reports_every_failing_line(app: TrialConduct) -> None:
    commands = [
        Command("record", subject="S001", kind="register", line=1,
                fields={"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61, "transplant_date": "2025-01-10"}),
        Command("record", subject="S001", kind="lab", fields={"date": "2025-03-01", "anc": 0.4}, line=2),
        Command("record", subject="S001", kind="lab", fields={"date": "2025-03-01", "anc": 400}, line=3),
        Command("record", subject="S002", kind="lab", fields={"date": "2025-03-01", "anc": 1}, line=4),
    ]
    with pytest.raises(BatchRejected) as err:
        app.execute(commands, user=USER)
    assert [line for line, _ in err.value.errors] == [3, 4]
    assert app.subjects() == []
    results = app.execute(commands[:2], user=USER)
    assert [r.ref for r in results] == ["S001#1", "S001#2"]


def test_the_user_is_stamped_on_every_event(app: TrialConduct) -> None:
    register(app)
    app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4}, user="nurse.li", source="LIS-77")
    event = app.stream("S001")[-1]
    assert (event.recorded_by, event.source) == ("nurse.li", "LIS-77")
    with pytest.raises(ValidationError, match="--user"):
        app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4}, user="")


def test_awareness_of_an_sae_may_come_after_the_death(app: TrialConduct) -> None:
    register(app)
    app.record("death", "S001", {"date": "2025-03-10"}, user=USER)
    app.record("ae", "S001", {"onset": "2025-03-08", "term": "sepsis", "grade": 5, "serious": "death",
                              "end": "2025-03-10", "aware": "2025-03-12T08:00"}, user=USER)
