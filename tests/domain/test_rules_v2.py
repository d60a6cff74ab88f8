"""Hand-computed boundary cases for every "(v2)" rule of docs/rules.md.

MSC D1 = 2025-03-01 = ``day(0)``; the protocol's D-number of ``day(n)`` is D(n+1) (no D0), so
the evaluation day D57 is ``day(56)``. Transplant 2025-02-01 (day 0 post-transplant).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from pgf_events.domain.rules import ctcae
from pgf_events.domain.rules.dosing import assess_dosing
from pgf_events.domain.rules.hemogram import neutrophil_engraftment, platelet_response
from pgf_events.domain.rules.inputs import InfusionPoint, LabPoint, TransfusionPoint
from pgf_events.domain.rules.response import lineage_outcomes
from pgf_events.domain.rules.survival import aalen_johansen, kaplan_meier
from pgf_events.projections.clinical import msc_day
from pgf_events.protocol import BASE_VERSION, V1_VERSION, Protocol

P = Protocol()
V1 = Protocol.preset("v1")
D1 = date(2025, 3, 1)
HSCT = date(2025, 2, 1)
LATE = D1 + timedelta(days=200)


def day(n: int) -> date:
    return D1 + timedelta(days=n)


def plt(*pairs: tuple[int, float]) -> list[LabPoint]:
    return [LabPoint(day(n), f"S001#{i + 10}", plt=v) for i, (n, v) in enumerate(pairs)]


def plt_tx(n: int) -> TransfusionPoint:
    return TransfusionPoint(day(n), "S001#90", "platelets")


def response(labs, tx=(), as_of=LATE, params=P, exit_day=None):
    return platelet_response(labs, list(tx), params, anchor=D1, as_of=as_of, msc_d1=D1, exit_day=exit_day)


def outcomes(labs, tx=(), as_of=LATE, params=P, exit_event=None):
    return lineage_outcomes(list(labs), list(tx), params, transplant_day=HSCT, msc_d1=D1, as_of=as_of,
                            exit_event=exit_event)


# --- protocol versions ---------------------------------------------------------------------------

def test_default_protocol_is_v2_and_v1_stays_selectable():
    assert P.version == BASE_VERSION == "NCT06171906-v2"
    assert (P.plt_rule, P.plt_min_counts, P.plt_max_gap_days, P.plt_sustain_days) == ("sustained_run", 2, 14, 7)
    assert P.nr_on_early_exit and P.relapse_censor == "last_disease_assessment"
    assert (V1.version, V1.plt_rule, V1.nr_on_early_exit, V1.min_counts_in_window) == (V1_VERSION, "window", False, 3)
    assert V1.digest != P.digest


# --- day numbering -------------------------------------------------------------------------------

def test_msc_days_have_no_day_zero():
    assert [msc_day(D1, day(n)) for n in (-2, -1, 0, 1, 12)] == [-2, -1, 1, 2, 13]


# --- platelet response: sustained run ------------------------------------------------------------

def test_weekly_counts_above_50_are_a_cr_run():
    # v1 needed 3 counts in 7 days and said NR; v2: two counts 7 days apart (span 7 >= 6).
    labs = plt((0, 60.0), (7, 65.0), (14, 70.0))
    assert response(labs).response == "CR" and response(labs).day == day(0)
    assert response(labs).window_end == day(7)
    assert response(labs, params=V1).response == "NR"


def test_weekly_counts_between_20_and_50_are_a_pr_run():
    result = response(plt((0, 19.0), (7, 30.0), (14, 45.0), (21, 40.0)))
    assert (result.response, result.day, result.window_end) == ("PR", day(7), day(14))


def test_a_run_must_last_plt_sustain_days():
    assert response(plt((0, 60.0), (5, 60.0))).response == "NR"  # span 5 < 6
    assert response(plt((0, 60.0), (6, 60.0))).response == "CR"  # span 6: days 0..6 are 7 days


def test_a_14_day_gap_keeps_the_run_and_a_15_day_gap_breaks_it():
    assert response(plt((0, 60.0), (14, 60.0))).day == day(0)
    # 0 -> 15 is too far apart; the run starts again on day 15 (15, 22).
    result = response(plt((0, 60.0), (15, 60.0), (22, 60.0)))
    assert (result.response, result.day) == ("CR", day(15))
    assert response(plt((0, 60.0), (15, 60.0))).response == "NR"


def test_a_failing_value_breaks_the_run():
    result = response(plt((0, 60.0), (3, 45.0), (7, 60.0), (14, 60.0)))
    assert (result.response, result.day) == ("CR", day(7))


def test_transfusion_on_the_7th_day_before_a_run_blocks_it():
    labs = plt((10, 60.0), (17, 60.0), (24, 60.0))
    assert response(labs, [plt_tx(3)]).day == day(17)  # 10 - 7 = 3 blocks the run from day 10
    assert response(labs, [plt_tx(2)]).day == day(10)  # 8 days before: outside the look-back


def test_transfusion_inside_a_run_blocks_it():
    labs = plt((0, 60.0), (7, 60.0), (14, 60.0), (21, 60.0))
    assert response(labs, [plt_tx(5)]).day == day(14)  # runs from 0 and 7 contain day 5 / look back to it


def test_an_open_run_is_not_yet_a_response():
    assert response(plt((0, 60.0), (7, 60.0)), as_of=day(6)) is None
    assert response(plt((0, 60.0), (7, 60.0)), as_of=day(7)).response == "CR"


def test_same_day_lowest_counts_for_runs():
    labs = plt((0, 60.0), (7, 60.0)) + [LabPoint(day(7), "S001#30", plt=48.0)]
    assert response(labs).response == "PR"


# --- NR reasons and early exits ------------------------------------------------------------------

def test_death_on_d56_is_nr_died_and_on_d58_nr_evaluation_day_passed():
    labs = plt((0, 10.0), (7, 12.0))
    d56, d58 = day(55), day(57)
    died56 = outcomes(labs, as_of=d56, exit_event=(d56, "died"))
    assert (died56.platelet_response, died56.reasons["platelet_response"]) == ("NR", "died")
    assert died56.plt.day == d56
    died58 = outcomes(labs, as_of=d58, exit_event=(d58, "died"))
    assert (died58.platelet_response, died58.reasons["platelet_response"]) == ("NR", "evaluation_day_passed")
    assert died58.plt.day == day(56)
    # v1: the patient dead on D56 stays pending forever.
    assert outcomes(labs, as_of=d56, params=V1, exit_event=(d56, "died")).platelet_response is None


def test_withdrawal_before_d57_is_nr_withdrew():
    out = outcomes(plt((0, 10.0)), as_of=day(20), exit_event=(day(20), "withdrew"))
    assert (out.platelet_response, out.reasons["platelet_response"]) == ("NR", "withdrew")
    assert out.reasons["neutrophil_engraftment"] == "withdrew"


def test_alive_before_d57_is_pending_with_a_reason():
    out = outcomes(plt((0, 10.0)), as_of=day(56))
    assert out.platelet_response is None
    assert out.reasons == {"neutrophil_engraftment": "pending", "rbc_recovery": "pending",
                           "platelet_response": "pending"}


def test_transfusion_in_the_7_days_before_d57_is_nr_transfusion_dependent():
    labs = plt((0, 10.0), (50, 12.0))
    for n, reason in ((49, "transfusion_dependent"), (55, "transfusion_dependent"),
                      (48, "evaluation_day_passed"), (56, "evaluation_day_passed")):
        out = outcomes(labs, [plt_tx(n)], as_of=day(60))
        assert (out.platelet_response, out.reasons["platelet_response"]) == ("NR", reason), n


def test_a_late_response_after_d57_still_wins():
    out = outcomes(plt((0, 10.0), (70, 55.0), (77, 60.0)), as_of=day(80))
    assert (out.platelet_response, out.plt.day) == ("CR", day(70))
    assert "platelet_response" not in out.reasons


def test_no_recovery_after_d57_is_not_reached():
    out = outcomes([LabPoint(day(0), "a", anc=0.1, hb=60.0)], as_of=day(60))
    assert out.reasons["neutrophil_engraftment"] == out.reasons["rbc_recovery"] == "not_reached"


# --- met at baseline -----------------------------------------------------------------------------

def test_neutrophils_met_on_d1_are_not_evaluable():
    labs = [LabPoint(day(n), f"S001#{n + 20}", anc=0.8) for n in (-4, -2, 0, 3, 5)]
    out = outcomes(labs)
    assert out.anc is None and out.reasons["neutrophil_engraftment"] == "met_at_baseline"
    assert out.baseline_refs["neutrophil_engraftment"] == ("S001#16", "S001#18", "S001#20")
    # v1 counted it as engrafted on D1.
    assert outcomes(labs, params=V1).anc.day == day(0)


def test_neutrophils_with_a_failing_value_among_the_last_three_are_evaluable():
    labs = [LabPoint(day(n), "x", anc=v) for n, v in ((-4, 0.8), (-2, 0.4), (0, 0.8), (3, 0.9), (5, 0.9))]
    assert outcomes(labs).anc.day == day(0)


def test_red_cells_met_at_baseline_unless_transfused_in_the_28_days_before():
    labs = [LabPoint(day(0), "a", hb=75.0), LabPoint(day(3), "b", hb=80.0)]
    assert outcomes(labs).reasons["rbc_recovery"] == "met_at_baseline"
    tx = [TransfusionPoint(day(-27), "t", "rbc")]  # blocks days -27 .. 0
    out = outcomes(labs, tx)
    assert "rbc_recovery" not in out.reasons and out.rbc.day == day(3)
    assert outcomes(labs, [TransfusionPoint(day(-28), "t", "rbc")]).reasons["rbc_recovery"] == "met_at_baseline"


def test_platelets_in_a_cr_run_at_d1_are_ne():
    out = outcomes(plt((-7, 60.0), (0, 62.0), (7, 70.0)))
    assert (out.platelet_response, out.reasons["platelet_response"]) == ("NE", "met_at_baseline")
    # a CR run that ended before the last count up to D1 is history, not baseline
    assert outcomes(plt((-14, 60.0), (-7, 62.0), (0, 30.0), (7, 70.0), (14, 70.0))).platelet_response == "CR"


# --- dosing: discontinued ------------------------------------------------------------------------

def infusion(n: int) -> InfusionPoint:
    return InfusionPoint(day(n), f"S001#{n + 5}", 6e7, 60.0)


def test_doses_open_at_death_are_discontinued():
    stopped = (day(9), "death on 2025-03-10", ("S001#20",))
    s = assess_dosing([infusion(0), infusion(7)], P, as_of=day(9), stopped=stopped)
    assert [d.status for d in s.doses] == ["on_time", "on_time", "discontinued", "discontinued"]
    assert (s.discontinued, s.missed, s.pending) == (2, 0, 0)
    assert s.doses[2].reason == "death on 2025-03-10"


def test_a_window_closed_before_withdrawal_is_missed_not_discontinued():
    # Dose 3 targets day 14 (window to day 16); withdrawal on day 17: dose 3 missed, dose 4 discontinued.
    s = assess_dosing([infusion(0), infusion(7)], P, as_of=day(17), stopped=(day(17), "withdrew", ("S001#20",)))
    assert [d.status for d in s.doses][2:] == ["missed", "discontinued"]
    # on the window's last day the dose was still possible: discontinued
    s = assess_dosing([infusion(0), infusion(7)], P, as_of=day(16), stopped=(day(16), "withdrew", ("S001#20",)))
    assert [d.status for d in s.doses][2:] == ["discontinued", "discontinued"]


# --- same-day values -----------------------------------------------------------------------------

def test_the_lowest_same_day_value_counts_for_efficacy_and_toxicity():
    labs = [LabPoint(day(n), f"r{n}", anc=0.7) for n in (0, 1, 2)] + [LabPoint(day(1), "low", anc=0.4)]
    assert neutrophil_engraftment(labs, P, anchor=D1) is None  # day 1 counts 0.4: the run breaks
    worst = [w for w in ctcae.lab_worsenings(labs, baseline_day=day(0)) if w.analyte == "anc"]
    assert [(w.day, w.grade, w.value) for w in worst] == [(day(1), 4, 0.4)]


# --- survival with delayed entry -----------------------------------------------------------------

def test_kaplan_meier_with_delayed_entry_matches_a_hand_computation():
    # (entry, time, status): A 30-100 death, B 40-80 censored, C 90-150 death, D 35-60 death, E 50-200 cens.
    entry = [30, 40, 90, 35, 50]
    data = [(100, 1), (80, 0), (150, 1), (60, 1), (200, 0)]
    # t=60: at risk A B D E (C enters at 90) = 4 -> 3/4; t=100: A C E = 3 -> x 2/3; t=150: C E = 2 -> x 1/2.
    km = kaplan_meier(data, 365, entry=entry)
    assert km.estimate == pytest.approx(0.25)
    assert km.variance == pytest.approx(0.25**2 * (1 / 12 + 1 / 6 + 1 / 2))
    assert km.events == 3 and km.at_risk == 0
    assert kaplan_meier(data, 120, entry=entry).at_risk == 2  # C and E: entered before 120, time >= 120
    # without delayed entry C counts at risk from 0: t=60 n=5, t=100 n=3, t=150 n=2
    assert kaplan_meier(data, 365).estimate == pytest.approx(4 / 5 * 2 / 3 * 1 / 2)


def test_an_event_on_the_entry_day_counts():
    km = kaplan_meier([(30, 1), (100, 0)], 365, entry=[30, 10])
    assert km.estimate == pytest.approx(0.5)


def test_tied_relapse_and_censoring_with_delayed_entry():
    # P1 enters 10, relapses 50; P2 enters 20, censored 50 (at risk at 50: events before censorings);
    # P3 enters 60, dies 80 without relapse (not at risk at 50); P4 enters 5, censored 100.
    data = [(50, 1), (50, 0), (80, 2), (100, 0)]
    aj = aalen_johansen(data, 365, entry=[10, 20, 60, 5])
    # t=50: n=3, F1 = 1/3, S = 2/3; t=80: n=2 (P3, P4), F2 = 2/3 * 1/2 = 1/3.
    assert aj.estimate == pytest.approx(1 / 3) and aj.competing_estimate == pytest.approx(1 / 3)
    assert (aj.events, aj.competing_events) == (1, 1)


def test_entry_after_the_time_is_rejected():
    with pytest.raises(ValueError, match="entry time"):
        kaplan_meier([(10, 1)], 365, entry=[20])
    assert math.isclose(kaplan_meier([(10, 1)], 365, entry=[10]).estimate, 0.0)
