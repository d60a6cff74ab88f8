"""MAGIC acute GVHD staging/grading and NIH 2014 chronic severity (docs/rules.md,
"Secondary endpoints")."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgf_events.domain.rules.gvhd import (
    CHRONIC_ORGANS,
    AcuteStages,
    acute_grade,
    acute_gvhd,
    bilirubin_mg_dl,
    chronic_gvhd,
    chronic_severity,
    liver_stage,
    lower_gi_stage,
    max_acute_grade,
    max_chronic_severity,
    skin_stage,
    upper_gi_stage,
)

DAY = date(2025, 4, 1)


@pytest.mark.parametrize("bsa, bullae, stage", [
    (0.0, False, 0),
    (24.9, False, 1),
    (25.0, False, 2),   # 25% is stage 2, not 1
    (50.0, False, 2),   # 50% is still stage 2
    (50.1, False, 3),   # > 50%
    (50.1, True, 4),    # > 50% with bullae/desquamation
    (40.0, True, 2),    # bullae without > 50% stage by BSA alone
])
def test_skin_stage_edges(bsa, bullae, stage):
    assert skin_stage(bsa, bullae) == stage


def test_skin_bsa_above_one_hundred_is_rejected():
    with pytest.raises(ValueError):
        skin_stage(101.0)


@pytest.mark.parametrize("umol, stage", [
    (34.19, 0),   # 34.19 / 17.1 = 1.9994 mg/dL < 2
    (34.2, 1),    # 34.2 / 17.1 = 2.0 mg/dL: stage 1 starts at 2.0
    (51.3, 1),    # 51.3 / 17.1 = 3.0 mg/dL (float 2.9999999999999996 rounded): stage 1 ends at 3.0
    (51.31, 2),   # 3.0006 mg/dL: between "3" and "3.1" -> stage 2
    (102.6, 2),   # 6.0 mg/dL: stage 2 ends at 6.0
    (102.7, 3),   # 6.006 mg/dL
    (256.5, 3),   # 15.0 mg/dL: stage 3 ends at 15.0
    (256.6, 4),   # 15.006 mg/dL > 15
])
def test_liver_stage_edges_on_converted_bilirubin(umol, stage):
    assert liver_stage(umol) == stage


def test_bilirubin_conversion_divides_by_17_1():
    assert bilirubin_mg_dl(34.2) == 2.0
    assert bilirubin_mg_dl(51.3) == 3.0


def test_upper_gi_stage_is_zero_or_one():
    assert (upper_gi_stage(False), upper_gi_stage(True)) == (0, 1)


@pytest.mark.parametrize("ml, pain, stage", [
    (499.0, False, 0), (500.0, False, 1), (999.0, False, 1), (1000.0, False, 2),
    (1500.0, False, 2), (1501.0, False, 3), (200.0, True, 4),
])
def test_lower_gi_stage_edges(ml, pain, stage):
    assert lower_gi_stage(ml, pain) == stage


@pytest.mark.parametrize("stages, grade", [
    (AcuteStages(0, 0, 0, 0), 0),
    (AcuteStages(2, 0, 0, 0), 1),   # skin 1-2 -> I
    (AcuteStages(3, 0, 0, 0), 2),   # skin 3 -> II
    (AcuteStages(0, 1, 0, 0), 2),   # liver 1 -> II
    (AcuteStages(0, 0, 1, 0), 2),   # upper GI -> II
    (AcuteStages(0, 0, 0, 1), 2),   # lower GI 1 -> II
    (AcuteStages(3, 2, 0, 0), 3),   # liver 2 -> III
    (AcuteStages(0, 0, 1, 3), 3),   # lower GI 3 -> III
    (AcuteStages(4, 0, 0, 0), 4),   # skin 4 -> IV
    (AcuteStages(1, 4, 0, 0), 4),   # liver 4 -> IV
    (AcuteStages(1, 0, 0, 4), 4),   # lower GI 4 -> IV
])
def test_overall_grade_is_the_max_over_organs(stages, grade):
    assert acute_grade(stages) == grade


def test_acute_assessment_from_raw_measures():
    # Skin 30% -> 2 (I); bilirubin 60 µmol/L = 3.51 mg/dL -> liver 2 (III); grade III.
    a = acute_gvhd(day=DAY, ref="S001#12", skin_bsa_pct=30.0, bilirubin_umol_l=60.0, upper_gi=False,
                   stool_ml_per_day=300.0)
    assert a.stages == AcuteStages(2, 2, 0, 0)
    assert (a.grade, a.complete, a.refs) == (3, True, ("S001#12",))
    assert abs(a.bilirubin_mg_dl - 3.508771930) < 1e-8


def test_unassessed_organs_are_reported_and_count_as_stage_zero():
    a = acute_gvhd(day=DAY, ref="S001#12", skin_bsa_pct=60.0)
    assert a.stages == AcuteStages(3, None, None, None)
    assert (a.grade, a.complete) == (2, False)


def test_max_acute_grade_over_assessments():
    a = acute_gvhd(day=DAY, ref="a", skin_bsa_pct=10.0)
    b = acute_gvhd(day=DAY, ref="b", stool_ml_per_day=1200.0)
    assert max_acute_grade([a, b]) == 3
    assert max_acute_grade([]) is None


@pytest.mark.parametrize("scores, severity", [
    ({}, "none"),
    ({"skin": 1}, "mild"),
    ({"skin": 1, "mouth": 1}, "mild"),
    ({"skin": 1, "mouth": 1, "eyes": 1}, "moderate"),   # >= 3 organs at 1
    ({"skin": 2}, "moderate"),                           # non-lung organ at 2
    ({"lungs": 1}, "moderate"),                          # lung 1 is never mild
    ({"lungs": 2}, "severe"),
    ({"joints": 3}, "severe"),
    ({"skin": 0, "gi": 0}, "none"),
])
def test_nih_global_severity(scores, severity):
    assert chronic_severity(scores) == severity


def test_unknown_chronic_organ_is_rejected():
    with pytest.raises(ValueError, match="unknown chronic GVHD organ"):
        chronic_severity({"kidney": 1})


@pytest.mark.parametrize("score", [4, -1, 1.5, True])
def test_chronic_score_outside_zero_to_three_is_rejected(score):
    with pytest.raises(ValueError, match="must be 0, 1, 2 or 3"):
        chronic_severity({"skin": score})


def test_chronic_assessment_lists_every_organ_and_the_worst_wins():
    a = chronic_gvhd(day=DAY, ref="S001#20", scores={"mouth": 1})
    b = chronic_gvhd(day=DAY, ref="S001#21", scores={"lungs": 1})
    assert [o for o, _ in a.scores] == list(CHRONIC_ORGANS)
    assert max_chronic_severity([a, b]) == "moderate"
    assert max_chronic_severity([]) is None


@given(st.dictionaries(st.sampled_from(CHRONIC_ORGANS), st.integers(0, 3)), st.sampled_from(CHRONIC_ORGANS))
def test_raising_an_organ_score_never_lowers_severity(scores, organ):
    order = ["none", "mild", "moderate", "severe"]
    raised = dict(scores, **{organ: min(3, scores.get(organ, 0) + 1)})
    assert order.index(chronic_severity(raised)) >= order.index(chronic_severity(scores))
