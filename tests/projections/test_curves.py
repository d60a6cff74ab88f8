"""The figures' whole curves agree with the reports' estimators at every step: Kaplan–Meier and
Aalen–Johansen estimates and CIs, and the numbers at risk, with and without delayed entry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.domain.rules.survival import aalen_johansen, kaplan_meier
from pgf_events.projections.curves import aj_curve, at_risk, endpoint_incidence, km_curve, observations, step_at

obs_lists = st.lists(st.tuples(st.integers(0, 40), st.sampled_from([0, 1, 2])), min_size=1, max_size=40)


def _entries(draw: st.DrawFn, obs: list[tuple[int, int]]) -> list[float]:
    return [float(draw(st.integers(0, t))) for t, _ in obs]


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[float] | None]:
    obs = draw(obs_lists)
    return obs, _entries(draw, obs) if draw(st.booleans()) else None


def _close(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and abs(a - b) < 1e-9)


@settings(max_examples=150, deadline=None)
@given(cohorts())
def test_the_km_curve_is_the_reports_estimate_at_every_time(cohort) -> None:
    obs, entry = cohort
    c = km_curve(obs, entry)
    for t in sorted({t for t, _ in obs} | {0, 41}):
        est = kaplan_meier(obs, t, entry=entry)
        i = max(j for j, u in enumerate(c["time"]) if u <= t)
        assert _close(c["surv"][i], est.estimate)
        if est.ci_low is not None:
            assert _close(c["low"][i], est.ci_low) and _close(c["high"][i], est.ci_high)
        assert c["low"][i] <= c["surv"][i] <= c["high"][i]
        assert at_risk(obs, entry, [t]) == [est.at_risk]
        entries = entry or [-1.0] * len(obs)  # the definition, counted patient by patient
        assert est.at_risk == sum(1 for (u, _), e in zip(obs, entries, strict=True)
                                  if u >= t and (e < t or e == t == u))


@settings(max_examples=150, deadline=None)
@given(cohorts())
def test_the_aj_curve_is_the_reports_incidence_at_every_time(cohort) -> None:
    obs, entry = cohort
    c = aj_curve(obs, entry)
    for t in sorted({t for t, _ in obs} | {0, 41}):
        est = aalen_johansen(obs, t, entry=entry)
        assert _close(step_at(c["time"], c["inc"], t), est.estimate)
        assert _close(step_at(c["time"], c["competing"], t), est.competing_estimate)
        if est.ci_low is not None:
            assert step_at(c["time"], c["low"], t) == pytest.approx(est.ci_low, rel=1e-6, abs=1e-9)
            assert step_at(c["time"], c["high"], t) == pytest.approx(est.ci_high, rel=1e-6, abs=1e-9)
        assert step_at(c["time"], c["low"], t) <= step_at(c["time"], c["inc"], t) <= step_at(c["time"], c["high"], t)


def test_km_steps_and_censoring_marks_by_hand() -> None:
    c = km_curve([(10, 1), (20, 0), (30, 1), (40, 0)])
    assert c["time"] == [0.0, 10.0, 30.0] and c["surv"] == [1.0, 0.75, 0.375]
    assert list(zip(c["censored"], c["censored_surv"], strict=True)) == [(20.0, 0.75), (40.0, 0.375)]


def test_empty_and_single_patient_curves() -> None:
    assert km_curve([])["time"] == [0.0] and aj_curve([])["inc"] == [0.0]
    assert km_curve([(5, 1)])["surv"] == [1.0, 0.0]
    assert aj_curve([(5, 1)])["inc"] == [0.0, 1.0]
    assert at_risk([], None, [0, 10]) == [0, 0]


def test_observations_read_delayed_entry_as_the_reports_do() -> None:
    assert observations([{"time": 3, "status": 1}]) == ([(3, 1)], None)
    assert observations([{"time": 3, "status": 1, "entry": 2}, {"time": 4, "status": 0}]) == ([(3, 1), (4, 0)], [2, 0])


def test_endpoint_incidence_reaches_k_over_n() -> None:
    e = endpoint_incidence([12, None, 5], 4, 56)
    assert e == {"time": [0.0, 5.0, 12.0, 56.0], "inc": [0.0, 0.25, 0.5, 0.5]}


@pytest.mark.parametrize("p", [1 - 1e-15, 1e-300, 0.5])
def test_log_log_bands_take_their_limit_where_the_exponent_exceeds_a_float(p: float) -> None:
    """Near 0 or 1, se/|p log p| is huge and exp(z·s) overflows: the band is then its limit (0, 1),
    not an OverflowError (Hypothesis once drew such a cohort); elsewhere the formula is unchanged."""
    from pgf_events.domain.rules.survival import _loglog_ci
    from pgf_events.projections.curves import _loglog

    low, high = _loglog(p, 0.3)
    assert (low, high) == _loglog_ci(p, 0.3, 1.959963984540054)
    assert 0.0 <= low <= p <= high <= 1.0
    if p == 0.5:
        assert 0.0 < low < high < 1.0
    else:
        assert (low, high) == (0.0, 1.0)


def test_a_rounding_error_in_the_variance_does_not_open_the_band_near_one() -> None:
    """Hypothesis drew this cohort: the incidence reaches 1 - 1e-16 at t = 2, where the report's
    estimator sums its variance to at most 0 and the figure's running sums to a rounding error
    above it, which the log-log band near p = 1 turned into (0, 1) instead of (p, p)."""
    obs = [(0, 1), (1, 0), (1, 0), (1, 0), (1, 0), (1, 0), (1, 1), (2, 1), (2, 1)]
    curve, est = aj_curve(obs), aalen_johansen(obs, 2)
    assert est.estimate == pytest.approx(1.0) and est.ci_low == est.estimate
    assert step_at(curve["time"], curve["low"], 2) == est.ci_low
    assert step_at(curve["time"], curve["high"], 2) == est.ci_high
