"""Wilson score interval (docs/rules.md, "Secondary endpoints": infection proportion)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgf_events.domain.rules.stats import wilson_ci


def test_wilson_half_matches_hand_computation():
    # p = 0.5, z² = 3.841459, z²/n = 0.384146, D = 1.384146;
    # centre = (0.5 + 0.192073) / 1.384146 = 0.5
    # half = 1.959964 / 1.384146 * sqrt(0.025 + 3.841459/400) = 1.416008 * sqrt(0.034604) = 0.263406
    ci = wilson_ci(5, 10)
    assert ci.estimate == 0.5
    assert ci.ci_low == pytest.approx(0.236594, abs=1e-6)
    assert ci.ci_high == pytest.approx(0.763406, abs=1e-6)


def test_wilson_zero_successes_starts_at_zero():
    # upper = (z²/n) / (1 + z²/n) = 0.384146 / 1.384146 = 0.277533
    ci = wilson_ci(0, 10)
    assert ci.ci_low == pytest.approx(0.0, abs=1e-12)
    assert ci.ci_high == pytest.approx(0.277533, abs=1e-6)


def test_wilson_all_successes_ends_at_one():
    ci = wilson_ci(10, 10)
    assert ci.ci_high == pytest.approx(1.0)
    assert ci.ci_low == pytest.approx(1 - 0.277533, abs=1e-6)


def test_wilson_of_nobody_is_none():
    assert wilson_ci(0, 0) is None


@pytest.mark.parametrize("k, n", [(3, 2), (-1, 5), (1, -1)])
def test_wilson_rejects_impossible_counts(k, n):
    with pytest.raises(ValueError):
        wilson_ci(k, n)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_estimate_within_zero_one(kn):
    ci = wilson_ci(*kn)
    assert 0.0 <= ci.ci_low <= ci.estimate + 1e-12 and ci.estimate <= ci.ci_high + 1e-12 and ci.ci_high <= 1.0
