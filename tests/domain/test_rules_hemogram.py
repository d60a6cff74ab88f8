"""Hemogram recovery (docs/rules.md, "Laboratory conventions", "Primary endpoint").

Anchor = MSC D1 = 2025-03-01 (day 0 here), transplant 2025-02-01 (Day 0 post-HSCT), so
March d is day_post_transplant 28 + d - 1 and days_since_msc_d1 d - 1.
"""

from datetime import date, timedelta

from pgf_events.domain.rules.hemogram import (
    days_between,
    endpoint_anchor,
    neutrophil_engraftment,
    platelet_response,
    red_cell_recovery,
)
from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint
from pgf_events.protocol import Protocol

P = Protocol()
D1 = date(2025, 3, 1)
HSCT = date(2025, 2, 1)
LATE = D1 + timedelta(days=200)  # an as_of long after every window and the NR day


def day(n: int) -> date:
    """Day n after MSC D1 (day(0) = D1)."""
    return D1 + timedelta(days=n)


def lab(n: int, ref: str, **values: float) -> LabPoint:
    return LabPoint(day(n), ref, **values)


def rbc(n: int, ref: str = "S001#90") -> TransfusionPoint:
    return TransfusionPoint(day(n), ref, "rbc")


def plt_tx(n: int, ref: str = "S001#91") -> TransfusionPoint:
    return TransfusionPoint(day(n), ref, "platelets")


def anc_series(*values: float) -> list[LabPoint]:
    return [lab(i, f"S001#{i + 1}", anc=v) for i, v in enumerate(values)]


# --- helpers --------------------------------------------------------------------------------

def test_days_between_counts_from_day_zero():
    assert days_between(HSCT, D1) == 28  # Feb has 28 days in 2025
    assert days_between(D1, HSCT) == -28


def test_endpoint_anchor_follows_the_protocol_parameter():
    assert endpoint_anchor(P, transplant_day=HSCT, msc_d1=D1) == D1
    assert endpoint_anchor(Protocol(endpoint_anchor="transplant"), transplant_day=HSCT, msc_d1=D1) == HSCT


# --- neutrophil engraftment -----------------------------------------------------------------

def test_anc_exactly_at_threshold_does_not_engraft_with_strict_comparator():
    # 0.5 is not > 0.5, so the run is days 1, 2, 3 (0.6, 0.7, 0.8).
    result = neutrophil_engraftment(anc_series(0.5, 0.6, 0.7, 0.8), P, anchor=D1)
    assert result.day == day(1)


def test_anc_exactly_at_threshold_engrafts_with_inclusive_comparator():
    result = neutrophil_engraftment(anc_series(0.5, 0.6, 0.7, 0.8), Protocol(anc_comparator=">="), anchor=D1)
    assert result.day == day(0)


def test_three_values_at_threshold_never_engraft_with_strict_comparator():
    assert neutrophil_engraftment(anc_series(0.5, 0.5, 0.5), P, anchor=D1) is None


def test_lowest_value_of_a_day_decides_engraftment():
    # Day 1 has 0.9 and 0.4: min 0.4 fails and breaks the run, so it restarts on day 2.
    labs = anc_series(0.6, 0.9, 0.7, 0.8, 0.9) + [lab(1, "S001#9", anc=0.4)]
    result = neutrophil_engraftment(labs, P, anchor=D1)
    assert result.day == day(2)
    assert result.values == (0.7, 0.8, 0.9)


def test_engraftment_reports_the_refs_of_every_value_on_the_run_days():
    labs = anc_series(0.6, 0.7, 0.8) + [lab(1, "S001#9", anc=0.9)]
    assert set(neutrophil_engraftment(labs, P, anchor=D1).refs) == {"S001#1", "S001#2", "S001#9", "S001#3"}


def test_measurement_mode_accepts_gaps_between_measurement_days():
    labs = [lab(0, "a", anc=0.6), lab(3, "b", anc=0.7), lab(7, "c", anc=0.8)]
    assert neutrophil_engraftment(labs, P, anchor=D1).day == day(0)


def test_calendar_mode_requires_consecutive_calendar_days():
    labs = [lab(0, "a", anc=0.6), lab(3, "b", anc=0.7), lab(4, "c", anc=0.8), lab(5, "d", anc=0.9)]
    assert neutrophil_engraftment(labs, Protocol(consecutive_mode="calendar_days"), anchor=D1).day == day(3)


def test_engraftment_is_searched_from_the_anchor_onward():
    # Days -2 and -1 pass but lie before the anchor; the run is days 0, 1, 2.
    labs = [lab(-2, "a", anc=0.9), lab(-1, "b", anc=0.9)] + anc_series(0.6, 0.7, 0.8)
    assert neutrophil_engraftment(labs, P, anchor=D1).day == day(0)


def test_engraftment_reports_days_from_both_anchors():
    result = neutrophil_engraftment(anc_series(0.4, 0.6, 0.7, 0.8), P, anchor=D1, transplant_day=HSCT, msc_d1=D1)
    # Engraftment on day(1) = Mar 2: 29 days after Feb 1, 1 day after D1.
    assert (result.day_post_transplant, result.days_since_msc_d1, result.days_from_anchor) == (29, 1, 1)


# --- red-cell recovery ----------------------------------------------------------------------

def test_hb_exactly_seventy_is_recovery():
    result = red_cell_recovery([lab(5, "S001#4", hb=70.0)], [], P, anchor=D1)
    assert result.day == day(5) and result.hb == 70.0


def test_hb_just_below_seventy_is_not_recovery():
    assert red_cell_recovery([lab(5, "S001#4", hb=69.9)], [], P, anchor=D1) is None


def test_lowest_hb_of_a_day_counts():
    labs = [lab(5, "a", hb=75.0), lab(5, "b", hb=68.0), lab(6, "c", hb=72.0)]
    assert red_cell_recovery(labs, [], P, anchor=D1).day == day(6)


def test_rbc_transfusion_on_the_first_day_of_the_look_back_blocks_hb():
    # Transfusion on day 3 blocks days 3..3+27 = 30; Hb on day 30 is its last blocked day.
    assert red_cell_recovery([lab(30, "a", hb=80.0)], [rbc(3)], P, anchor=D1) is None


def test_rbc_transfusion_just_outside_the_look_back_does_not_block():
    # Transfusion on day 2 blocks days 2..29; Hb on day 30 counts.
    result = red_cell_recovery([lab(30, "a", hb=80.0)], [rbc(2, "S001#7")], P, anchor=D1)
    assert result.day == day(30)
    assert result.refs == ("a", "S001#7")  # the Hb and the transfusion whose window it cleared


def test_rbc_transfusion_on_the_measurement_day_blocks_hb():
    # The last day of the look-back window is the Hb day itself.
    assert red_cell_recovery([lab(30, "a", hb=80.0)], [rbc(30)], P, anchor=D1) is None


def test_rbc_transfusion_before_the_anchor_still_blocks():
    # Day -10 blocks -10..17; Hb on day 10 is blocked, on day 18 it counts.
    labs = [lab(10, "a", hb=80.0), lab(18, "b", hb=80.0)]
    assert red_cell_recovery(labs, [rbc(-10)], P, anchor=D1).day == day(18)


def test_platelet_transfusion_does_not_block_hb():
    assert red_cell_recovery([lab(5, "a", hb=80.0)], [plt_tx(5)], P, anchor=D1).day == day(5)


# --- platelet response, v1 fixed window (protocol NCT06171906-v1; v2 runs: test_rules_v2.py) ---

V1 = Protocol.preset("v1")

def plt_labs(*pairs: tuple[int, float]) -> list[LabPoint]:
    return [lab(n, f"S001#{i + 1}", plt=v) for i, (n, v) in enumerate(pairs)]


def response(labs, tx=(), as_of=LATE, params=V1):
    return platelet_response(labs, list(tx), params, anchor=D1, as_of=as_of, msc_d1=D1)


def test_plt_exactly_fifty_throughout_a_window_is_cr():
    result = response(plt_labs((0, 50.0), (3, 60.0), (6, 55.0)))
    assert (result.response, result.day, result.window_end) == ("CR", day(0), day(6))
    assert result.refs == ("S001#1", "S001#2", "S001#3")


def test_plt_exactly_twenty_with_some_below_fifty_is_pr():
    result = response(plt_labs((0, 20.0), (2, 49.9), (4, 60.0)))
    assert result.response == "PR"


def test_plt_below_twenty_in_the_window_is_no_response():
    # Window from day 0 has 19.9; later windows have fewer than 3 counts -> nothing before NR.
    result = response(plt_labs((0, 19.9), (2, 30.0), (4, 30.0)))
    assert result.response == "NR"


def test_lowest_plt_of_a_day_counts():
    labs = plt_labs((0, 60.0), (2, 60.0), (4, 60.0)) + [lab(2, "S001#9", plt=45.0)]
    assert response(labs).response == "PR"


def test_window_needs_three_measurement_days():
    # Days 0 and 6 lie in the window; day 7 is outside it (window = days 0..6).
    result = response(plt_labs((0, 60.0), (6, 60.0), (7, 60.0)))
    assert result.response == "NR"


def test_several_counts_on_one_day_are_one_measurement_day():
    # Three counts on day 0 and one on day 3 make 2 measurement days < 3 -> no window.
    labs = [lab(0, "a", plt=60.0), lab(0, "b", plt=61.0), lab(0, "c", plt=62.0), lab(3, "d", plt=60.0)]
    assert response(labs).response == "NR"


def test_platelet_transfusion_on_the_last_day_of_the_window_blocks_it():
    # Window days 0..6 blocked by a transfusion on day 6; the next windows start on 3 and 5
    # and lack 3 counts, so no CR.
    labs = plt_labs((0, 60.0), (3, 60.0), (5, 60.0))
    assert response(labs, [plt_tx(6)]).response == "NR"


def test_platelet_transfusion_on_the_day_before_the_window_blocks_it():
    labs = plt_labs((0, 60.0), (3, 60.0), (5, 60.0))
    assert response(labs, [plt_tx(-1)]).response == "NR"


def test_platelet_transfusion_on_the_first_day_of_the_look_back_blocks_it():
    # Look-back before window start day 0 is days -7..-1.
    labs = plt_labs((0, 60.0), (3, 60.0), (5, 60.0))
    assert response(labs, [plt_tx(-7)]).response == "NR"


def test_platelet_transfusion_before_the_look_back_does_not_block():
    labs = plt_labs((0, 60.0), (3, 60.0), (5, 60.0))
    result = response(labs, [plt_tx(-8, "S001#50")])
    assert result.response == "CR"
    assert result.refs[-1] == "S001#50"  # the transfusion whose look-back the window cleared


def test_rbc_transfusion_does_not_block_platelet_windows():
    assert response(plt_labs((0, 60.0), (3, 60.0), (5, 60.0)), [rbc(2)]).response == "CR"


def test_best_response_is_cr_even_after_an_earlier_pr():
    labs = plt_labs((0, 30.0), (2, 30.0), (4, 30.0), (20, 55.0), (22, 55.0), (24, 55.0))
    result = response(labs)
    assert (result.response, result.day) == ("CR", day(20))


def test_pr_date_is_the_first_pr_window():
    labs = plt_labs((0, 30.0), (2, 30.0), (4, 30.0), (6, 30.0))
    assert response(labs).day == day(0)


def test_window_not_yet_complete_as_of_is_not_evaluated():
    # Window days 0..6 ends after as_of day 5: still pending, not CR.
    labs = plt_labs((0, 60.0), (2, 60.0), (4, 60.0))
    assert response(labs, as_of=day(5)) is None
    assert response(labs, as_of=day(6)).response == "CR"


def test_no_response_is_pending_until_the_evaluation_day_has_passed():
    labs = plt_labs((0, 10.0), (2, 10.0), (4, 10.0))
    # Evaluation day = D1 + 56; on that day it has not yet passed.
    assert response(labs, as_of=day(56)) is None
    result = response(labs, as_of=day(57))
    assert (result.response, result.day) == ("NR", day(56))


def test_cr_after_the_evaluation_day_still_counts():
    labs = plt_labs((0, 10.0), (2, 10.0), (4, 10.0), (70, 55.0), (72, 55.0), (74, 55.0))
    result = response(labs, as_of=day(80))
    assert (result.response, result.day) == ("CR", day(70))


def test_windows_start_on_or_after_the_anchor():
    # A window from day -2 (before the anchor) would be CR; the first from day 0 has 2 counts.
    labs = plt_labs((-2, 60.0), (0, 60.0), (2, 60.0))
    assert response(labs).response == "NR"


def test_thresholds_come_from_the_protocol():
    labs = plt_labs((0, 40.0), (2, 40.0), (4, 40.0))
    assert response(labs, params=Protocol(plt_rule="window", plt_cr_threshold=40)).response == "CR"
