"""CTCAE v5.0 lab grades with strict < boundaries (docs/rules.md, "Safety")."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgf_events.domain.rules.ctcae import (
    anaemia_grade,
    is_worsening,
    lab_grade,
    lab_worsenings,
    neutrophil_count_decreased_grade,
    platelet_count_decreased_grade,
)
from pgf_events.domain.rules.inputs import LabPoint


@pytest.mark.parametrize("anc, grade", [
    (2.0, 0),    # = LLN 2.0 is not < LLN
    (1.99, 1),   # < LLN and >= 1.5
    (1.5, 1),    # 1.5 is not < 1.5
    (1.49, 2),
    (1.0, 2),    # 1.0 is not < 1.0
    (0.99, 3),
    (0.5, 3),    # 0.5 is not < 0.5: grade 3, not 4
    (0.49, 4),
    (0.0, 4),
])
def test_neutrophil_count_decreased_grade_boundaries(anc, grade):
    assert neutrophil_count_decreased_grade(anc) == grade


@pytest.mark.parametrize("plt, grade", [
    (150.0, 0), (149.0, 1), (75.0, 1), (74.9, 2), (50.0, 2), (49.9, 3), (25.0, 3), (24.9, 4),
])
def test_platelet_count_decreased_grade_boundaries(plt, grade):
    assert platelet_count_decreased_grade(plt) == grade


@pytest.mark.parametrize("hb, grade", [
    (120.0, 0), (119.0, 1), (100.0, 1), (99.0, 2), (80.0, 2), (79.0, 3), (40.0, 3),
])
def test_anaemia_grade_boundaries_and_no_lab_grade_four(hb, grade):
    assert anaemia_grade(hb) == grade


def test_lower_limit_of_normal_is_a_parameter():
    # With LLN 1.8, ANC 1.9 is normal; with the default 2.0 it is grade 1.
    assert neutrophil_count_decreased_grade(1.9, lln=1.8) == 0
    assert neutrophil_count_decreased_grade(1.9) == 1
    assert anaemia_grade(125.0, lln=130.0) == 1


def test_lab_grade_rejects_an_unknown_analyte():
    with pytest.raises(ValueError, match="unknown analyte"):
        lab_grade("wbc", 1.0)


def test_worsening_needs_a_higher_grade_than_baseline():
    assert not is_worsening(4, 4)
    assert not is_worsening(4, 3)
    assert is_worsening(3, 4)
    assert is_worsening(None, 1)  # no baseline counts as grade 0


@given(st.floats(min_value=0, max_value=5), st.floats(min_value=0, max_value=5))
def test_lower_anc_never_grades_lower(a, b):
    low, high = sorted((a, b))
    assert neutrophil_count_decreased_grade(low) >= neutrophil_count_decreased_grade(high)


def test_lab_worsenings_compare_later_days_with_the_baseline_day():
    labs = [
        LabPoint(date(2025, 3, 1), "S001#3", anc=0.8, plt=30.0),   # baseline: ANC G3, PLT G3
        LabPoint(date(2025, 3, 5), "S001#5", anc=0.4, plt=40.0),   # ANC G4 worse; PLT G3 same
        LabPoint(date(2025, 3, 9), "S001#6", anc=0.9, plt=20.0),   # ANC G3 same; PLT G4 worse
    ]
    rows = lab_worsenings(labs, baseline_day=date(2025, 3, 1))
    assert [(r.analyte, r.day, r.grade, r.baseline_grade) for r in rows] == [
        ("anc", date(2025, 3, 5), 4, 3),
        ("plt", date(2025, 3, 9), 4, 3),
    ]
    assert rows[0].refs == ("S001#5", "S001#3")
    assert rows[0].term == "Neutrophil count decreased"


def test_lab_worsening_uses_the_worst_value_of_a_day():
    labs = [
        LabPoint(date(2025, 3, 1), "a", hb=85.0),                    # baseline G2
        LabPoint(date(2025, 3, 4), "b", hb=90.0),
        LabPoint(date(2025, 3, 4), "c", hb=75.0),                    # same day: G3 -> worse
    ]
    (row,) = lab_worsenings(labs, baseline_day=date(2025, 3, 2))
    assert (row.value, row.grade, row.baseline_day) == (75.0, 3, date(2025, 3, 1))


def test_without_baseline_any_abnormal_grade_is_a_worsening():
    (row,) = lab_worsenings([LabPoint(date(2025, 3, 4), "b", plt=100.0)], baseline_day=date(2025, 3, 1))
    assert (row.grade, row.baseline_grade) == (1, None)
