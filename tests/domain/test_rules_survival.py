"""Kaplan–Meier and Aalen–Johansen (docs/rules.md, "Secondary endpoints": Survival)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgf_events.domain.rules.stats import Z95
from pgf_events.domain.rules.survival import aalen_johansen, kaplan_meier, survival_at_horizon
from pgf_events.protocol import Protocol

SIX = [(1, 1), (2, 0), (3, 1), (4, 1), (5, 0), (6, 0)]


def test_km_estimate_matches_hand_computation():
    # t=1: n=6, d=1 -> S = 5/6;  t=3: n=4, d=1 -> S = 5/6 * 3/4 = 5/8;
    # t=4: n=3, d=1 -> S = 5/8 * 2/3 = 5/12 = 0.416667.
    r = kaplan_meier(SIX, 5)
    assert r.estimate == pytest.approx(5 / 12)
    assert (r.events, r.n) == (3, 6)


def test_km_greenwood_variance_matches_hand_computation():
    # Σ d/(n(n-d)) = 1/(6*5) + 1/(4*3) + 1/(3*2) = 2/60 + 5/60 + 10/60 = 17/60 = 0.283333
    # Var = S² Σ = (5/12)² * 17/60 = 0.173611 * 0.283333 = 0.049190
    assert kaplan_meier(SIX, 5).variance == pytest.approx((5 / 12) ** 2 * 17 / 60)


def test_km_log_log_ci_matches_hand_computation():
    # log S = ln(5/12) = -0.875469; se(log(-log S)) = sqrt(17/60) / 0.875469 = 0.532291 / 0.875469
    # = 0.608006; z*se = 1.959964 * 0.608006 = 1.191671; exp(+1.191671) = 3.292578,
    # exp(-1.191671) = 0.303713.
    # low = S^3.292578 = exp(-0.875469 * 3.292578) = exp(-2.882550) = 0.055992
    # high = S^0.303713 = exp(-0.875469 * 0.303713) = exp(-0.265891) = 0.766522
    r = kaplan_meier(SIX, 5)
    assert r.ci_low == pytest.approx(0.055992, abs=1e-6)
    assert r.ci_high == pytest.approx(0.766522, abs=1e-6)


def test_km_number_at_risk_counts_times_at_or_after_the_horizon():
    # Times >= 5: 5 and 6.
    assert kaplan_meier(SIX, 5).at_risk == 2


def test_km_deaths_come_before_censorings_at_the_same_time():
    # t=1: n=4 -> 3/4; t=2: the patient censored at 2 is still at risk, n=3 -> 3/4 * 2/3 = 0.5
    # (censoring first would give n=2 and 3/4 * 1/2 = 0.375).
    r = kaplan_meier([(1, 1), (2, 1), (2, 0), (3, 1)], 2)
    assert r.estimate == pytest.approx(0.5)


def test_km_event_on_the_horizon_day_counts():
    data = [(365, 1), (400, 0)]
    assert kaplan_meier(data, 365).estimate == pytest.approx(0.5)
    assert kaplan_meier(data, 365).at_risk == 2
    assert kaplan_meier(data, 364).estimate == 1.0


def test_km_ci_is_undefined_when_nobody_has_died():
    r = kaplan_meier([(100, 0), (200, 0)], 365)
    assert (r.estimate, r.ci_low, r.ci_high, r.at_risk) == (1.0, None, None, 0)


def test_km_of_no_patients_has_no_estimate():
    assert kaplan_meier([], 365).estimate is None


def test_km_treats_competing_status_as_censoring():
    assert kaplan_meier([(1, 2), (2, 1)], 3).estimate == pytest.approx(0.0)
    assert kaplan_meier([(1, 2), (2, 0)], 3).estimate == 1.0


def test_survival_at_horizon_reads_the_protocol_horizon():
    assert survival_at_horizon([(200, 1), (300, 0)], Protocol(survival_horizon_days=100)).estimate == 1.0
    assert survival_at_horizon([(200, 1), (300, 0)], Protocol()).estimate == pytest.approx(0.5)


def test_survival_refs_are_carried_when_given():
    assert kaplan_meier([(10, 1, "S001"), (20, 0, "S002")], 365).refs == ("S001", "S002")


@pytest.mark.parametrize("row", [(-1, 0), (1, 3), (float("nan"), 1)])
def test_invalid_observation_is_rejected(row):
    with pytest.raises(ValueError):
        kaplan_meier([row], 365)


# --- Aalen–Johansen -------------------------------------------------------------------------

COMPETING = [(1, 2), (2, 1), (3, 0), (4, 1), (5, 0)]


def test_aalen_johansen_differs_from_one_minus_km():
    # All-cause S: t=1 n=5 (competing) -> F2 = 1/5, S = 4/5; t=2 n=4 d1=1 -> F1 = 4/5 * 1/4 = 0.2,
    # S = 3/5; t=4 n=2 d1=1 -> F1 += 3/5 * 1/2 = 0.3 -> F1 = 0.5.
    # 1-KM with the competing death censored: 1 - (3/4 * 1/2) = 0.625, not 0.5.
    r = aalen_johansen(COMPETING, 4)
    assert r.estimate == pytest.approx(0.5)
    assert r.competing_estimate == pytest.approx(0.2)
    naive = 1 - kaplan_meier(COMPETING, 4).estimate
    assert naive == pytest.approx(0.625)


def test_aalen_johansen_delta_variance_matches_hand_computation():
    # F(4) = 0.5. Per time (n, d, d1, S(t-), F1(t)): (5,1,0,1,0), (4,1,1,0.8,0.2), (2,1,1,0.6,0.5).
    # Σ (F-F_j)² d/(n(n-d)) = 0.25/20 + 0.09/12 + 0 = 0.0125 + 0.0075 = 0.02
    # Σ S² d1(n-d1)/n³       = 0 + 0.64*3/64 + 0.36*1/8 = 0.03 + 0.045 = 0.075
    # -2 Σ (F-F_j) S d1/n²   = -2 * (0.3*0.8/16) = -0.03
    # Var = 0.02 + 0.075 - 0.03 = 0.065
    r = aalen_johansen(COMPETING, 4)
    assert r.variance == pytest.approx(0.065)
    se = math.sqrt(0.065) / abs(0.5 * math.log(0.5))
    assert r.ci_low == pytest.approx(0.5 ** math.exp(Z95 * se))
    assert r.ci_high == pytest.approx(0.5 ** math.exp(-Z95 * se))


def test_aalen_johansen_counts_events_and_risk_set():
    r = aalen_johansen(COMPETING, 4)
    assert (r.events, r.competing_events, r.at_risk, r.n) == (2, 1, 2, 5)


def test_aalen_johansen_without_competing_events_equals_one_minus_km():
    data = [(1, 1), (2, 0), (3, 1), (4, 1), (5, 0)]
    assert aalen_johansen(data, 5).estimate == pytest.approx(1 - kaplan_meier(data, 5).estimate)


observations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=500), st.sampled_from([0, 1, 2])), max_size=40,
)


@given(observations, st.integers(0, 500), st.integers(0, 500))
def test_km_is_within_zero_one_and_non_increasing(data, t1, t2):
    early, late = sorted((t1, t2))
    a, b = kaplan_meier(data, early), kaplan_meier(data, late)
    if data:
        assert 0.0 <= b.estimate <= a.estimate <= 1.0
        if a.ci_low is not None:
            assert 0.0 <= a.ci_low <= a.estimate <= a.ci_high <= 1.0


@given(observations, st.integers(0, 500))
def test_incidences_add_up_to_one_minus_all_cause_survival(data, horizon):
    r = aalen_johansen(data, horizon)
    if data:
        all_cause = kaplan_meier([(t, 1 if s else 0) for t, s in data], horizon).estimate
        assert r.estimate + r.competing_estimate <= 1.0 + 1e-12
        assert r.estimate + r.competing_estimate == pytest.approx(1 - all_cause, abs=1e-12)
        # Censoring competing events instead overstates incidence: F1 <= 1 - KM.
        assert r.estimate <= 1 - kaplan_meier(data, horizon).estimate + 1e-12
