"""Dose-to-window assignment (docs/rules.md, "Dosing").

Default protocol: 4 doses of 1e6 cells/kg, targets D1, D1+7, D1+14, D1+21, window ±2 days,
minimum gap 5 days, tolerance ±10%. With D1 = 2025-01-01 the targets are Jan 1, 8, 15, 22 and
the windows Jan 6-10 (dose 2), Jan 13-17 (dose 3), Jan 20-24 (dose 4).
"""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from pgf_events.domain.rules.dosing import assess_dosing
from pgf_events.domain.rules.inputs import InfusionPoint
from pgf_events.protocol import Protocol

P = Protocol()


def inf(day: int, n: int, cells: float = 7e7, weight: float = 70.0) -> InfusionPoint:
    """An infusion on January ``day`` 2025; 7e7 cells / 70 kg = 1e6 cells/kg, exactly as planned."""
    return InfusionPoint(date(2025, 1, day), f"S001#{n}", cells, weight)


def statuses(summary) -> list[str]:
    return [d.status for d in summary.doses]


def test_four_on_time_doses_complete_the_course():
    s = assess_dosing([inf(1, 1), inf(8, 2), inf(15, 3), inf(22, 4)], P, as_of=date(2025, 2, 1))
    assert statuses(s) == ["on_time"] * 4
    assert (s.given, s.on_time, s.missed, s.completed) == (4, 4, 0, True)
    # 4 x 1e6 cells/kg given / (4 x 1e6 planned) = 1.0
    assert s.cumulative_cells_per_kg == 4e6
    assert s.relative_dose_intensity == 1.0
    assert s.deviations == ()
    assert s.refs == ("S001#1", "S001#2", "S001#3", "S001#4")


def test_first_infusion_fixes_d1_whatever_its_date():
    s = assess_dosing([inf(3, 1), inf(10, 2)], P, as_of=date(2025, 1, 10))
    assert s.msc_d1 == date(2025, 1, 3)
    assert [d.target for d in s.doses[:2]] == [date(2025, 1, 3), date(2025, 1, 10)]


def test_infusion_two_days_from_target_is_on_time():
    # Jan 10 = target Jan 8 + 2 = the window's last day.
    s = assess_dosing([inf(1, 1), inf(10, 2)], P, as_of=date(2025, 1, 10))
    assert s.doses[1].status == "on_time"
    assert s.doses[1].days_from_target == 2


def test_infusion_before_the_window_is_early_with_negative_days():
    # Jan 5 < window opening Jan 6 -> early, Jan 5 - Jan 8 = -3 days.
    s = assess_dosing([inf(1, 1), inf(5, 2)], P, as_of=date(2025, 1, 5))
    dose = s.doses[1]
    assert (dose.number, dose.status, dose.days_from_target) == (2, "early", -3)
    assert ("early", 2) in [(d.kind, d.dose) for d in s.deviations]


def test_early_infusion_inside_the_minimum_gap_is_a_gap_deviation():
    # Jan 5 - Jan 1 = 4 days < min_dose_gap_days 5.
    s = assess_dosing([inf(1, 1), inf(5, 2)], P, as_of=date(2025, 1, 5))
    gap = [d for d in s.deviations if d.kind == "gap_below_minimum"]
    assert len(gap) == 1 and gap[0].refs == ("S001#1", "S001#2")


def test_infusion_after_the_window_but_before_the_next_one_is_late():
    # Jan 11 > Jan 10 (window end) but < Jan 13 (dose 3 window opens) -> dose 2 late by +3.
    s = assess_dosing([inf(1, 1), inf(11, 2)], P, as_of=date(2025, 1, 11))
    assert (s.doses[1].status, s.doses[1].days_from_target) == ("late", 3)
    assert s.late == 1


def test_infusion_once_the_next_window_opens_misses_the_current_dose():
    # Jan 13 >= target(3) Jan 15 - 2 -> dose 2 missed, infusion is dose 3 on time (-2).
    s = assess_dosing([inf(1, 1), inf(13, 2)], P, as_of=date(2025, 1, 13))
    assert statuses(s)[:3] == ["on_time", "missed", "on_time"]
    assert s.doses[2].days_from_target == -2
    assert s.doses[2].refs == ("S001#2",)


def test_missed_dose_cites_the_d1_infusion_and_the_infusion_that_skipped_it():
    s = assess_dosing([inf(1, 1), inf(13, 2)], P, as_of=date(2025, 1, 13))
    assert s.doses[1].refs == ("S001#1", "S001#2")
    missed = [d for d in s.deviations if d.kind == "missed"]
    assert [(d.dose, d.refs) for d in missed] == [(2, ("S001#1", "S001#2"))]


def test_missed_dose_is_never_made_up_by_doubling():
    # Jan 15 -> dose 2 missed, dose 3 on time; Jan 16 is then dose 4 (target Jan 22), early by -6,
    # never a second dose 3 nor a late dose 2.
    s = assess_dosing([inf(1, 1), inf(15, 2), inf(16, 3)], P, as_of=date(2025, 1, 16))
    assert statuses(s) == ["on_time", "missed", "on_time", "early"]
    assert s.doses[3].days_from_target == -6
    assert s.given == 3 and s.missed == 1


def test_two_infusions_on_one_day_are_two_doses_the_second_early():
    s = assess_dosing([inf(1, 1), inf(8, 2), inf(8, 3)], P, as_of=date(2025, 1, 8))
    assert statuses(s)[:3] == ["on_time", "on_time", "early"]
    assert s.doses[2].days_from_target == -7  # Jan 8 - Jan 15
    assert any(d.kind == "gap_below_minimum" for d in s.deviations)


def test_open_window_as_of_its_last_day_is_pending():
    # Dose 2 window is Jan 6..10; as of Jan 10 it is still open.
    s = assess_dosing([inf(1, 1)], P, as_of=date(2025, 1, 10))
    assert statuses(s) == ["on_time", "pending", "pending", "pending"]


def test_window_closed_as_of_the_day_after_is_missed():
    s = assess_dosing([inf(1, 1)], P, as_of=date(2025, 1, 11))
    assert statuses(s) == ["on_time", "missed", "pending", "pending"]
    assert (s.missed, s.pending) == (1, 2)


def test_infusions_dated_after_as_of_are_not_counted():
    s = assess_dosing([inf(1, 1), inf(8, 2)], P, as_of=date(2025, 1, 7))
    assert s.given == 1 and s.refs == ("S001#1",)


def test_no_infusion_leaves_every_dose_pending():
    s = assess_dosing([], P, as_of=date(2025, 6, 1))
    assert s.msc_d1 is None and statuses(s) == ["pending"] * 4
    assert s.relative_dose_intensity == 0.0 and not s.completed


def test_infusions_beyond_planned_doses_are_never_assigned():
    s = assess_dosing([inf(1, 1), inf(8, 2), inf(15, 3), inf(22, 4), inf(29, 5)], P, as_of=date(2025, 2, 1))
    assert len(s.doses) == 4 and s.given == 4
    extra = [d for d in s.deviations if d.kind == "extra_infusion"]
    assert len(extra) == 1 and extra[0].refs == ("S001#5",)
    # Cumulative counts what the patient received: 5 x 1e6 / 4e6 = 1.25.
    assert s.relative_dose_intensity == 1.25


def test_dose_exactly_ten_percent_over_is_within_tolerance():
    # 7.7e7 cells / 70 kg = 1.1e6 cells/kg; (1.1e6 - 1e6) / 1e6 = +0.10 = tolerance (inclusive).
    dose = assess_dosing([inf(1, 1, cells=7.7e7)], P).doses[0]
    assert abs(dose.deviation - 0.10) < 1e-12
    assert dose.within_tolerance is True


def test_dose_beyond_tolerance_is_a_dose_deviation():
    # 6.2e7 / 70 = 885 714 cells/kg; (885714 - 1e6) / 1e6 = -0.114 < -0.10.
    s = assess_dosing([inf(1, 1, cells=6.2e7)], P)
    assert s.doses[0].within_tolerance is False
    assert [d.kind for d in s.deviations] == ["dose_out_of_tolerance"]


def test_dose_per_kg_uses_the_weight_recorded_for_that_dose():
    # 7e7 / 50 kg = 1.4e6 cells/kg -> +40%.
    dose = assess_dosing([inf(1, 1, weight=50.0)], P).doses[0]
    assert dose.cells_per_kg == 1.4e6
    assert abs(dose.deviation - 0.4) < 1e-12


def test_discontinuation_reason_is_reported_and_course_not_completed():
    s = assess_dosing([inf(1, 1), inf(8, 2)], P, as_of=date(2025, 2, 1), discontinuation_reason="withdrawal")
    assert s.discontinuation_reason == "withdrawal"
    assert not s.completed and s.missed == 2


def test_window_width_comes_from_the_protocol():
    # With dose_window_days = 3, Jan 11 (= Jan 8 + 3) is on time.
    s = assess_dosing([inf(1, 1), inf(11, 2)], Protocol(dose_window_days=3), as_of=date(2025, 1, 11))
    assert s.doses[1].status == "on_time"


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=10), st.integers(min_value=0, max_value=90))
def test_never_more_doses_assigned_than_planned(offsets, as_of_offset):
    infs = [InfusionPoint(date.fromordinal(date(2025, 1, 1).toordinal() + o), f"S#{i}", 7e7, 70.0)
            for i, o in enumerate(offsets)]
    s = assess_dosing(infs, P, as_of=date.fromordinal(date(2025, 1, 1).toordinal() + as_of_offset))
    assert [d.number for d in s.doses] == [1, 2, 3, 4]
    assert s.given + s.missed + s.pending == s.planned == 4
    assert s.given <= len(infs)
    assigned = [r for d in s.doses if d.status in ("on_time", "early", "late") for r in d.refs]
    assert len(assigned) == len(set(assigned)) == s.given
