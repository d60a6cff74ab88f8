"""Summary statistics shared by the report sections: rates with a Wilson CI, distributions,
Kaplan–Meier and Aalen–Johansen estimates at a horizon (the pure estimators are in domain.rules)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from pgf_events.domain.rules.stats import wilson_ci
from pgf_events.domain.rules.survival import aalen_johansen, kaplan_meier

Row = Mapping[str, Any]  # one patient's projection slice


def rate(k: int, n: int) -> dict[str, Any]:
    ci = wilson_ci(k, n)
    return {"k": k, "n": n, "estimate": ci.estimate if ci else None,
            "ci_low": ci.ci_low if ci else None, "ci_high": ci.ci_high if ci else None}

def summary_stats(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    return {"n": len(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "min": min(values), "max": max(values)}

def _entry(obs: Sequence[Mapping[str, Any]]) -> list[float] | None:
    """Delayed entry times when the observations carry them (from transplant, v2), else None."""
    return [o.get("entry") or 0 for o in obs] if any("entry" in o for o in obs) else None

def km(obs: Sequence[Mapping[str, Any]], horizon: int) -> dict[str, Any]:
    entry = _entry(obs)
    est = kaplan_meier([(o["time"], o["status"]) for o in obs], horizon, entry=entry)
    return {"estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high, "at_risk": est.at_risk,
            "events": est.events, "n": est.n, "horizon_days": horizon, "delayed_entry": entry is not None}

def aj(obs: Sequence[Mapping[str, Any]], horizon: int) -> dict[str, Any]:
    entry = _entry(obs)
    est = aalen_johansen([(o["time"], o["status"]) for o in obs], horizon, entry=entry)
    return {"estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high, "at_risk": est.at_risk,
            "events": est.events, "competing_events": est.competing_events,
            "competing_estimate": est.competing_estimate, "n": est.n, "horizon_days": horizon,
            "delayed_entry": entry is not None}


def median(values: Sequence[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
