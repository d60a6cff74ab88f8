"""Cohort reports on a small hand-computed cohort (derived from real histories, in memory)."""

from __future__ import annotations

import pytest

from pgf_events.application import TrialConduct
from pgf_events.domain.rules.stats import wilson_ci
from pgf_events.domain.rules.survival import kaplan_meier
from pgf_events.projections.cohort import build_report
from pgf_events.projections.derive import PatientState
from tests.helpers import ELIGIBLE_SCREEN, USER, register
from tests.projections.common import lab, state_of, treated


@pytest.fixture
def cohort(app: TrialConduct) -> list[PatientState]:
    """S001 engrafts and has an infection; S002 dies on MSC day 30; S003 fails EX6; S004 is only registered."""
    treated(app, "S001")
    for day in ("02", "04", "06"):
        lab(app, f"2025-03-{day}", "S001", anc=0.8)
    app.record("infection", "S001", {"onset": "2025-03-06", "site": "lung", "grade": 3}, user=USER)
    lab(app, "2025-04-10", "S001", anc=1.5)  # S001 followed to MSC day 40
    treated(app, "S002")
    app.record("death", "S002", {"date": "2025-03-31"}, user=USER)
    register(app, "S003")
    app.record("consent", "S003", {"date": "2025-02-18"}, user=USER)
    screen = {**ELIGIBLE_SCREEN, "criterion": {**ELIGIBLE_SCREEN["criterion"], "EX6": "yes"}}
    app.record("screen", "S003", screen, user=USER)
    register(app, "S004")
    return [state_of(app, s) for s in ("S004", "S003", "S002", "S001")]


def test_eligibility_summary_is_the_consort_flow(app: TrialConduct, cohort: list[PatientState]) -> None:
    doc = build_report("eligibility", cohort, app.protocol)
    assert [r["subject"] for r in doc["rows"]] == ["S001", "S002", "S003", "S004"]
    assert doc["summary"] == {
        "registered": 4, "screened": 3, "eligible": 2, "pending": 1, "ineligible": 1,
        "ineligible_criteria": {"EX6": 1}, "consented": 3, "enrolled": 2, "treated": 2, "completed": 0,
        "withdrawn": 0, "died": 1,
    }


def test_endpoint_rates_carry_a_wilson_interval(app: TrialConduct, cohort: list[PatientState]) -> None:
    summary = build_report("endpoints", cohort, app.protocol)["summary"]
    ci = wilson_ci(1, 2)
    assert ci is not None
    assert summary["evaluable"] == 2
    assert summary["neutrophil_engraftment"] == {
        "k": 1, "n": 2, "estimate": 0.5, "ci_low": ci.ci_low, "ci_high": ci.ci_high,
        "median_days_since_msc_d1": 1, "median_msc_day": 2, "median_day_post_transplant": 51,
        "not_evaluable": 0, "reasons": {"died": 1},
    }


def test_infection_rate_per_100_patient_days(app: TrialConduct, cohort: list[PatientState]) -> None:
    summary = build_report("infections", cohort, app.protocol)["summary"]
    assert summary["patients_with_infection"]["k"] == 1 and summary["patients_with_infection"]["n"] == 2
    assert summary["patient_days_at_risk"] == 40 + 30
    assert summary["per_100_patient_days"] == pytest.approx(100 / 70)
    ci = summary["cumulative_incidence"]
    assert (ci["events"], ci["competing_events"], ci["estimate"]) == (1, 1, 0.5)


def test_survival_summary_from_both_origins(app: TrialConduct, cohort: list[PatientState]) -> None:
    doc = build_report("survival", cohort, app.protocol)
    km = kaplan_meier([(40, 0), (30, 1)], 365)  # S(365) = 1 - 1/2, Greenwood log-log CI
    assert doc["os_1y"] == {"estimate": 0.5, "ci_low": km.ci_low, "ci_high": km.ci_high, "at_risk": 0, "events": 1,
                            "n": 2, "horizon_days": 365, "delayed_entry": False}
    assert doc["summary"]["from_transplant"]["os_1y"]["estimate"] == 0.5
    rows = {r["subject"]: r for r in doc["rows"]}
    assert (rows["S002"]["os_days"], rows["S002"]["os_event"]) == (30, 1)
    assert (rows["S001"]["os_days"], rows["S001"]["os_event"]) == (40, 0)
    assert rows["S003"]["os_days"] is None


def test_reports_accept_stored_slices_as_well_as_states(app: TrialConduct, cohort: list[PatientState]) -> None:
    from pgf_events.projections.slices import slice_state

    for name in ("dosing", "safety", "gvhd"):
        slices = [slice_state(name, s.as_json()) for s in cohort]
        assert build_report(name, slices, app.protocol) == build_report(name, cohort, app.protocol)
