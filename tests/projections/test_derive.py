"""derive_patient on hand-built histories: interface keys, voids, corrections, evaluation date, refs."""

from __future__ import annotations

from datetime import UTC, datetime

from pgf_events.application import TrialConduct
from pgf_events.projections.derive import STATE_KEYS, derive_patient, fold
from pgf_events.projections.slices import PROJECTIONS, SLICE_KEYS, all_slices, collect_refs, status_document
from tests.helpers import ELIGIBLE_SCREEN, USER, infuse, register
from tests.projections.common import assert_status_keys, lab, state_of, treated


def test_state_has_the_interface_keys(app: TrialConduct) -> None:
    treated(app)
    lab(app, "2025-03-02", anc=0.3, plt=12, hb=65)
    doc = state_of(app).as_json()
    assert_status_keys(doc)
    assert doc["subject"] == "S001" and doc["enrolled"] is True and doc["alive"] is True
    assert doc["protocol_version"] == app.protocol.version


def test_slices_cover_the_whole_state_and_merge_back(app: TrialConduct) -> None:
    treated(app)
    state = state_of(app).as_json()
    covered = {key for keys in SLICE_KEYS.values() for key in keys} | {"version"}
    assert covered == set(STATE_KEYS)
    assert status_document(all_slices(state), state["version"]) == state


def test_screen_failure_is_ineligible_with_the_failed_criterion(app: TrialConduct) -> None:
    register(app)
    app.record("consent", "S001", {"date": "2025-02-18"}, user=USER)
    screen = {**ELIGIBLE_SCREEN, "criterion": {**ELIGIBLE_SCREEN["criterion"], "EX6": "yes"}}
    app.record("screen", "S001", screen, user=USER)
    doc = state_of(app).as_json()
    assert doc["eligibility"]["status"] == "ineligible"
    assert doc["eligibility"]["unmet"] == ["EX6"]
    assert doc["eligibility"]["refs"] == ["S001#3", "S001#2"]
    assert doc["enrolled"] is False and doc["treated"] is False
    assert doc["dosing"]["given"] == 0 and doc["dosing"]["discontinuation_reason"] is None
    assert doc["endpoints"]["neutrophil_engraftment_date"] is None
    assert doc["gvhd"] == {**doc["gvhd"], "acute_max_grade": None, "chronic_max_severity": None}
    assert doc["survival"]["os"] is None  # no first infusion: no origin


def _engraftment_history(app: TrialConduct) -> str:
    treated(app)  # MSC D1 2025-03-01 = S001#5
    lab(app, "2025-03-02", anc=0.6)
    low = lab(app, "2025-03-04", anc=0.4)
    for day, anc in (("2025-03-06", 0.7), ("2025-03-08", 0.8), ("2025-03-10", 0.9)):
        lab(app, day, anc=anc)
    return low


def test_a_failing_lab_breaks_the_neutrophil_run(app: TrialConduct) -> None:
    _engraftment_history(app)
    anc = state_of(app).as_json()["endpoints"]["neutrophil_engraftment"]
    assert anc["date"] == "2025-03-06"
    assert anc["refs"] == ["S001#8", "S001#9", "S001#10"]


def test_voided_lab_is_gone_from_every_endpoint(app: TrialConduct) -> None:
    low = _engraftment_history(app)
    app.void(low, "entered for the wrong patient", user=USER)
    doc = state_of(app).as_json()
    assert doc["endpoints"]["neutrophil_engraftment_date"] == "2025-03-02"
    assert doc["endpoints"]["neutrophil_engraftment"]["values"] == [0.6, 0.7, 0.8]
    assert low not in collect_refs(doc)


def test_corrected_lab_counts_with_its_new_value(app: TrialConduct) -> None:
    low = _engraftment_history(app)
    app.correct(low, {"anc": 0.65}, "transcription error", user=USER)
    anc = state_of(app).as_json()["endpoints"]["neutrophil_engraftment"]
    assert anc["date"] == "2025-03-02"
    assert anc["values"] == [0.6, 0.65, 0.7]
    assert low in anc["refs"]  # the record keeps its reference; its value is the corrected one


def test_voiding_the_correction_restores_the_original_value(app: TrialConduct) -> None:
    low = _engraftment_history(app)
    fix = app.correct(low, {"anc": 0.65}, "transcription error", user=USER).ref
    app.void(fix, "the correction itself was wrong", user=USER)
    assert state_of(app).as_json()["endpoints"]["neutrophil_engraftment_date"] == "2025-03-06"


def test_evaluation_date_is_the_latest_clinical_date_not_the_wall_clock(app: TrialConduct) -> None:
    treated(app)
    doc = state_of(app).as_json()
    assert doc["evaluation_date"] == "2025-03-01"
    assert (doc["dosing"]["missed"], doc["dosing"]["pending"]) == (0, 3)
    lab(app, "2025-03-20", anc=0.3)  # D8 and D15 windows have closed by then, D22's has not
    doc = state_of(app).as_json()
    assert doc["evaluation_date"] == "2025-03-20"
    assert [d["status"] for d in doc["dosing"]["doses"]] == ["on_time", "missed", "missed", "pending"]
    assert doc["survival"]["os"] == {"time": 19, "status": 0, "refs": ["S001#6"]}


def test_withdrawal_during_the_course_is_the_discontinuation_reason(app: TrialConduct) -> None:
    treated(app)
    infuse(app, "S001", "2025-03-08")
    app.record("withdraw", "S001", {"date": "2025-03-12", "reason": "patient decision"}, user=USER)
    doc = state_of(app).as_json()
    assert doc["withdrawn"] is True and doc["course_completed"] is False
    assert doc["dosing"]["discontinuation_reason"] == "patient decision"
    assert doc["dosing"]["given"] == 2


def test_death_after_the_course_is_not_a_discontinuation(app: TrialConduct) -> None:
    treated(app)
    for day in ("2025-03-08", "2025-03-15", "2025-03-22"):
        infuse(app, "S001", day)
    app.record("death", "S001", {"date": "2025-06-01", "cause": "sepsis"}, user=USER)
    doc = state_of(app).as_json()
    assert doc["course_completed"] is True and doc["dosing"]["discontinuation_reason"] is None
    assert doc["alive"] is False and doc["death_date"] == "2025-06-01"
    assert doc["survival"]["os"] == {"time": 92, "status": 1, "refs": ["S001#9"]}
    assert doc["survival"]["dfs"]["status"] == 1
    assert doc["survival"]["from_transplant"]["os"]["time"] == 142


def test_relapse_reported_at_a_contact_ends_disease_free_survival(app: TrialConduct) -> None:
    treated(app)
    app.record("contact", "S001", {"date": "2025-04-01", "status": "alive", "disease": "free"}, user=USER)
    app.record("contact", "S001", {"date": "2025-06-01", "status": "alive", "disease": "relapsed"}, user=USER)
    lab(app, "2025-07-01", anc=2.0)
    doc = state_of(app).as_json()
    assert doc["relapsed"] is True and doc["relapse_date"] == "2025-06-01"
    assert doc["survival"]["dfs"] == {"time": 92, "status": 1, "refs": ["S001#7"]}
    assert doc["survival"]["os"]["status"] == 0 and doc["survival"]["os"]["time"] == 122


def test_disease_free_survival_is_censored_at_the_last_disease_assessment(app: TrialConduct) -> None:
    treated(app)
    app.record("contact", "S001", {"date": "2025-04-01", "status": "alive", "disease": "free"}, user=USER)
    lab(app, "2025-05-01", anc=2.0)
    survival = state_of(app).as_json()["survival"]
    assert survival["dfs"] == {"time": 31, "status": 0, "refs": ["S001#6"]}
    assert survival["dfs_censor"] == "last_disease_assessment"
    assert survival["os"]["time"] == 61


def test_sae_sponsor_clock_uses_the_recorded_time(app: TrialConduct) -> None:
    treated(app)
    ref = app.record("ae", "S001", {"onset": "2025-03-10", "term": "pneumonia", "grade": 3,
                                    "serious": "hospitalisation", "related": "not",
                                    "aware": "2025-03-10T09:00Z"}, user=USER).ref
    patient, recorded = fold(app.stream("S001"))
    assert patient is not None
    version = int(ref.split("#")[1])

    def sponsor(at: datetime) -> dict:
        state = derive_patient(patient, app.protocol, {**recorded, version: at}).as_json()
        ae = state["safety"]["adverse_events"][0]
        assert ae["ref"] == ref and ae["susar"] is False
        return ae["clocks"][0]

    on_time = sponsor(datetime(2025, 3, 10, 20, 0, tzinfo=UTC))
    assert on_time == {"name": "sponsor", "due": "2025-03-11T09:00:00Z", "reported": "2025-03-10T20:00:00Z",
                       "met": True}
    assert sponsor(datetime(2025, 3, 12, 8, 0, tzinfo=UTC))["met"] is False


def test_gvhd_grades_from_raw_measures_and_is_null_until_assessed(app: TrialConduct) -> None:
    treated(app)
    assert state_of(app).as_json()["gvhd"]["acute_max_grade"] is None
    app.record("gvhd", "S001", {"date": "2025-03-20", "skin_bsa": 30}, user=USER)
    app.record("gvhd", "S001", {"date": "2025-03-27", "skin_bsa": 10, "stool_ml": 1200}, user=USER)
    app.record("gvhd", "S001", {"date": "2025-06-01", "chronic": True, "organ": ["lungs=1"]}, user=USER)
    g = state_of(app).as_json()["gvhd"]
    assert (g["acute_max_grade"], g["chronic_max_severity"]) == (3, "moderate")
    assert g["acute_grade_2_4_date"] == "2025-03-27"
    assert g["acute_2_4_incidence"] == {"time": 26, "status": 1, "refs": ["S001#7"]}


def test_infections_are_counted_with_their_follow_up(app: TrialConduct) -> None:
    register(app, "S002")
    treated(app)
    app.record("infection", "S001", {"onset": "2025-03-05", "site": "lung", "grade": 3}, user=USER)
    app.record("infection", "S001", {"onset": "2025-03-25", "site": "blood", "grade": 4}, user=USER)
    doc = state_of(app).as_json()
    assert doc["infections"] == 2
    assert [e["site"] for e in doc["infection_episodes"]] == ["lung", "blood"]
    f = doc["infection_followup"]
    assert (f["days_at_risk"], f["episodes"], f["first_onset"]) == (24, 2, "2025-03-05")
    assert f["incidence"] == {"time": 4, "status": 1, "refs": ["S001#6"]}


def test_every_projection_slice_names_the_protocol_and_existing_events(app: TrialConduct) -> None:
    treated(app)
    lab(app, "2025-03-02", anc=0.6, plt=30, hb=75)
    state = state_of(app).as_json()
    versions = {int(r.split("#")[1]) for r in collect_refs(state)}
    assert versions and versions <= set(range(1, state["version"] + 1))
    for name in PROJECTIONS:
        assert all_slices(state)[name]["protocol_version"] == app.protocol.version
