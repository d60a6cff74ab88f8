"""Kaplan–Meier and Aalen–Johansen estimators (docs/rules.md, "Secondary endpoints":
Survival; GVHD, relapse and infection incidence).

Input: one ``(time_days, status)`` per patient, optionally ``(time_days, status, ref)``, with
status 0 = censored, 1 = event of interest, 2 = competing event (death for incidences).
Conventions:
- ties: at one time, events happen before censorings, so a patient censored at t is still at
  risk for an event at t;
- an estimate at horizon h includes events at h (S(365) = surviving through day 365), and the
  number at risk at h counts patients with time >= h;
- Kaplan–Meier treats status 2 as censoring (OS and DFS have no competing event);
- the 95% CI of S(h) is Greenwood's variance on the log(-log) scale; it is None when S(h) is
  0 or 1, where that scale is undefined. A horizon past the last time keeps the last value.
- delayed entry (left truncation, v2, for from-transplant estimates entering at MSC D1): with
  ``entry`` a patient is at risk at t when entry < t <= time (the counting-process convention, as
  lifelines), and also at t = entry when their follow-up ends that same day (an event on the
  entry day is not lost). The number at risk at h then counts patients with entry < h <= time.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import attrs

from pgf_events.domain.rules.stats import Z95
from pgf_events.protocol import Protocol

Observation = tuple[float, int] | tuple[float, int, str]


@attrs.frozen
class SurvivalEstimate:
    """Kaplan–Meier S(horizon) with Greenwood variance and log-log 95% CI."""

    horizon: float
    estimate: float | None  # None when there are no observations
    variance: float | None
    ci_low: float | None
    ci_high: float | None
    at_risk: int
    events: int  # events at times <= horizon
    n: int
    refs: tuple[str, ...] = ()


@attrs.frozen
class CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of the event of interest at ``horizon``."""

    horizon: float
    estimate: float | None
    competing_estimate: float | None  # cumulative incidence of the competing event
    variance: float | None  # delta method (Marubini & Valsecchi 1995)
    ci_low: float | None  # log(-log) transformed, None when the estimate is 0 or 1
    ci_high: float | None
    at_risk: int
    events: int
    competing_events: int
    n: int
    refs: tuple[str, ...] = ()


def _validated(data: Iterable[Sequence]) -> list[tuple[float, int]]:
    rows = []
    for row in data:
        time, status = float(row[0]), row[1]
        if not math.isfinite(time) or time < 0:
            raise ValueError(f"survival time must be a finite number >= 0, not {row[0]!r}")
        if status not in (0, 1, 2) or isinstance(status, bool):
            raise ValueError(f"status must be 0 (censored), 1 (event) or 2 (competing), not {status!r}")
        rows.append((time, status))
    return rows


def _entries(entry: Sequence[float] | None, rows: list[tuple[float, int]]) -> list[float]:
    if entry is None:
        return [-math.inf] * len(rows)
    entries = [float(e) for e in entry]
    if len(entries) != len(rows):
        raise ValueError(f"{len(entries)} entry times for {len(rows)} observations")
    for e, (t, _) in zip(entries, rows, strict=True):
        if not math.isfinite(e) or e < 0 or e > t:
            raise ValueError(f"entry time must be a finite number between 0 and the observation time, not {e!r}")
    return entries


class RiskSet:
    """The numbers at risk of a set of observations at any time t, by bisection (O(log n) a time):
    #{time >= t} - #{entry >= t} + #{entry = time = t}, i.e. entry < t <= time, or t = entry = time
    (entry <= time always, so every entry >= t is also a time >= t)."""

    def __init__(self, rows: Sequence[tuple[float, int]], entries: Sequence[float]) -> None:
        self.times = sorted(u for u, _ in rows)
        self.entries = sorted(entries)
        self.same_day = Counter(u for (u, _), e in zip(rows, entries, strict=True) if e == u)

    def at(self, t: float) -> int:
        return (len(self.times) - bisect.bisect_left(self.times, t)
                - (len(self.entries) - bisect.bisect_left(self.entries, t)) + self.same_day[t])


def _at_risk(rows: list[tuple[float, int]], entries: list[float], t: float) -> int:
    return RiskSet(rows, entries).at(t)


def _table(rows: list[tuple[float, int]], horizon: float,
           entries: list[float] | None = None) -> list[tuple[float, int, int, int]]:
    """(time, at risk, events of interest, competing events) at each event time <= horizon."""
    risk = RiskSet(rows, entries if entries is not None else [-math.inf] * len(rows))
    events = Counter(u for u, s in rows if s == 1)
    competing = Counter(u for u, s in rows if s == 2)
    return [(t, risk.at(t), events[t], competing[t]) for t in sorted({t for t, s in rows if s != 0 and t <= horizon})]


ROUNDOFF = 1e-10  # a variance this small beside the terms summed into it is their rounding error


def settled_variance(variance: float, scale: float) -> float:
    """``variance`` (a sum of signed terms) or 0 where it is within rounding error of 0: below
    :data:`ROUNDOFF` times ``scale``, the sum of the terms' magnitudes. Near p = 1 the log-log band
    turns a rounding error into (0, 1) instead of (p, p), so two sums of the same terms in another
    order (the report's estimator, the figure's running sums) must settle alike."""
    return variance if variance > ROUNDOFF * scale else 0.0


def loglog_bounds(p: float, se: float, z: float) -> tuple[float, float]:
    """The bounds p^exp(±z·s), s = se / |p log p|, for 0 < p < 1 and se >= 0 (log(-log p) scale).

    Near p = 1 (or 0) with a finite se, s is huge and exp(z·s) exceeds a float: p raised to it is
    then 0 (and to exp(-z·s), 1), the limit the formula tends to, not an OverflowError.
    """
    s = se / abs(p * math.log(p))
    return _power_of_exp(p, z * s), _power_of_exp(p, -z * s)


def _power_of_exp(p: float, x: float) -> float:
    """p ** exp(x) for 0 < p < 1, with exp(x) beyond a float's range taken as its limit."""
    try:
        return p ** math.exp(x)
    except OverflowError:
        return 0.0


def _loglog_ci(p: float, se: float, z: float) -> tuple[float | None, float | None]:
    """CI for a probability p with standard error se on the log(-log p) scale."""
    if not 0 < p < 1:
        return None, None
    return loglog_bounds(p, se, z)


def _refs(data: Sequence[Sequence]) -> tuple[str, ...]:
    return tuple(str(row[2]) for row in data if len(row) > 2)


def kaplan_meier(data: Iterable[Observation], horizon: float, *, z: float = Z95,
                 entry: Sequence[float] | None = None) -> SurvivalEstimate:
    """Kaplan–Meier S(horizon), Greenwood variance S² Σ d/(n(n-d)) and log-log 95% CI.

    ``entry``: per observation, the time it enters the risk set (delayed entry); None = time 0.
    """
    data = list(data)
    rows = _validated(data)
    entries = _entries(entry, rows)
    at_risk = _at_risk(rows, entries, horizon)
    if not rows:
        return SurvivalEstimate(horizon, None, None, None, None, 0, 0, 0)
    surv, greenwood, events = 1.0, 0.0, 0
    for _t, n, d, _c in _table([(t, 1 if s == 1 else 0) for t, s in rows], horizon, entries):
        surv *= 1 - d / n
        greenwood += d / (n * (n - d)) if n > d else 0.0
        events += d
    variance = surv * surv * greenwood
    low, high = _loglog_ci(surv, math.sqrt(variance), z)
    return SurvivalEstimate(horizon, surv, variance, low, high, at_risk, events, len(rows), _refs(data))


def survival_at_horizon(data: Iterable[Observation], params: Protocol) -> SurvivalEstimate:
    """Kaplan–Meier estimate at ``params.survival_horizon_days`` (the 1-year OS/DFS)."""
    return kaplan_meier(data, params.survival_horizon_days)


def aalen_johansen(data: Iterable[Observation], horizon: float, *, z: float = Z95,
                   entry: Sequence[float] | None = None) -> CumulativeIncidence:
    """Cumulative incidence F1(h) = Σ_{tj<=h} S(tj-) d1j / nj with all-cause KM S, and F2 likewise.

    Variance (delta method): Σ (F1(h)-F1(tj))² dj/(nj(nj-dj)) + Σ S(tj-)² d1j(nj-d1j)/nj³
    - 2 Σ (F1(h)-F1(tj)) S(tj-) d1j/nj², with dj = d1j + d2j and F1(tj) including tj.
    ``entry`` as for :func:`kaplan_meier`.
    """
    data = list(data)
    rows = _validated(data)
    entries = _entries(entry, rows)
    at_risk = _at_risk(rows, entries, horizon)
    if not rows:
        return CumulativeIncidence(horizon, None, None, None, None, None, 0, 0, 0, 0)
    steps = []  # (n, d, d1, S(tj-), F1(tj))
    surv, f1, f2 = 1.0, 0.0, 0.0
    for _t, n, d1, d2 in _table(rows, horizon, entries):
        f1 += surv * d1 / n
        f2 += surv * d2 / n
        steps.append((n, d1 + d2, d1, surv, f1))
        surv *= 1 - (d1 + d2) / n
    variance = scale = 0.0
    for n, d, d1, lag_s, f1_j in steps:
        gap = f1 - f1_j
        if n > d:
            a = gap * gap * d / (n * (n - d))
            variance += a
            scale += a
        b, c = lag_s * lag_s * d1 * (n - d1) / n**3, 2 * gap * lag_s * d1 / n**2
        variance += b - c  # summed in the same order as ever: the reported variance unchanged
        scale += b + abs(c)
    variance = settled_variance(variance, scale)
    low, high = _loglog_ci(f1, math.sqrt(variance), z)
    return CumulativeIncidence(
        horizon, f1, f2, variance, low, high, at_risk,
        sum(s[2] for s in steps), sum(s[1] - s[2] for s in steps), len(rows), _refs(data),
    )


def incidence_at_horizon(data: Iterable[Observation], params: Protocol) -> CumulativeIncidence:
    """Aalen–Johansen cumulative incidence at ``params.survival_horizon_days``."""
    return aalen_johansen(data, params.survival_horizon_days)
