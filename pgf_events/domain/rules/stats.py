"""Small statistics shared by the cohort reports (docs/rules.md, "Secondary endpoints"):
the Wilson score interval for a proportion such as patients with >= 1 infection / enrolled.
"""

from __future__ import annotations

import math

import attrs

Z95 = 1.959963984540054  # standard normal quantile 0.975, for every 95% interval


@attrs.frozen
class ProportionCI:
    """k of n with its point estimate k/n and a two-sided confidence interval."""

    k: int
    n: int
    estimate: float
    ci_low: float
    ci_high: float


def wilson_ci(k: int, n: int, z: float = Z95) -> ProportionCI | None:
    """Wilson score interval for k/n (95% by default); None when n = 0.

    centre = (p + z²/2n) / (1 + z²/n), half-width = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
    """
    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, int) or not isinstance(n, int):
        raise ValueError(f"k and n must be whole numbers, not {k!r} and {n!r}")
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, not k={k}, n={n}")
    if n == 0:
        return None
    p = k / n
    zz = z * z
    denominator = 1 + zz / n
    centre = (p + zz / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + zz / (4 * n * n))
    return ProportionCI(k, n, p, max(0.0, centre - half), min(1.0, centre + half))
