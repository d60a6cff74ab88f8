"""Each lineage's outcome with its reason (docs/rules.md v2: "Met at baseline", NR reasons).

:func:`lineage_outcomes` runs the three searches of :mod:`hemogram` and says, for every endpoint
that is null, NR or not evaluable, *why*:

- ``not_treated``: no anchor date (no first infusion under the default anchor);
- ``met_at_baseline``: the lineage already met its criterion on the data up to and including MSC
  D1 (only with ``endpoint_anchor = first_infusion`` and ``baseline_met_not_evaluable``); the
  endpoint is not evaluable (``NE`` for platelets) and leaves that lineage's denominator;
- platelets NR: ``died`` or ``withdrew`` on or before the evaluation day (``nr_on_early_exit``),
  ``transfusion_dependent`` (a platelet transfusion in the 7 days before it) or
  ``evaluation_day_passed``;
- a missing neutrophil or red-cell date: ``died``/``withdrew`` when the patient left the study,
  ``not_reached`` once the evaluation day has passed, ``pending`` before it.

Baseline criteria: neutrophils, the last ``anc_consecutive_days`` ANC measurement days up to D1
all pass (calendar-consecutive in ``calendar_days`` mode); red cells, Hb >= ``hb_threshold`` on the
last Hb day up to D1 with no RBC transfusion in the ``rbc_transfusion_free_days`` up to it;
platelets, a CR run (:func:`hemogram.qualifying_run`) ending on the last platelet day up to D1,
i.e. one still standing at D1 (v1 window rule: a complete CR window ending by D1 that holds the
last count).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import date, timedelta

import attrs

from pgf_events.domain.rules import hemogram
from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint
from pgf_events.protocol import Protocol


@attrs.frozen
class LineageOutcomes:
    anc: hemogram.Engraftment | None
    rbc: hemogram.RedCellRecovery | None
    plt: hemogram.PlateletResponse | None
    platelet_response: str | None  # CR | PR | NR | NE | None (pending)
    reasons: dict[str, str]  # endpoint name -> reason code, for each null, NR or NE endpoint
    baseline_refs: dict[str, tuple[str, ...]]  # the values proving a met-at-baseline lineage


def _anc_at_baseline(daily: hemogram.Daily, ordered: list[date], params: Protocol,
                     d1: date) -> tuple[str, ...] | None:
    last = ordered[:bisect_right(ordered, d1)][-params.anc_consecutive_days:]
    if len(last) < params.anc_consecutive_days:
        return None
    thr = params.anc_threshold
    passes = all(daily[d][0] > thr if params.anc_comparator == ">" else daily[d][0] >= thr for d in last)
    contiguous = params.consecutive_mode == "measurements" or (last[-1] - last[0]).days == len(last) - 1
    return tuple(r for d in last for r in daily[d][1]) if passes and contiguous else None


def _rbc_at_baseline(daily: hemogram.Daily, ordered: list[date], transfusions: list[TransfusionPoint],
                     params: Protocol, d1: date) -> tuple[str, ...] | None:
    upto = bisect_right(ordered, d1)
    if not upto:
        return None
    last = ordered[upto - 1]
    blocked_from = last - timedelta(days=params.rbc_transfusion_free_days - 1)
    if daily[last][0] < params.hb_threshold or any(
            t.product == "rbc" and blocked_from <= t.day <= last for t in transfusions):
        return None
    return daily[last][1]


def _plt_at_baseline(plt: hemogram.Daily, ordered: list[date], transfusions: list[TransfusionPoint],
                     params: Protocol, d1: date) -> tuple[str, ...] | None:
    daily, ordered = hemogram.platelet_days((), d1, plt, ordered)
    if not ordered:
        return None
    tx_days = sorted(t.day for t in transfusions if t.product == "platelets")
    last = ordered[-1]
    if params.plt_rule == "window":
        for i, start in enumerate(ordered):
            end = start + timedelta(days=params.plt_window_days - 1)
            days = [d for d in ordered[i:] if d <= end]
            if end <= d1 and last in days and len(days) >= params.min_counts_in_window \
                    and not hemogram._any_between(tx_days, start - timedelta(
                        days=params.plt_transfusion_free_before_days), end) \
                    and all(daily[d][0] >= params.plt_cr_threshold for d in days):
                return tuple(r for d in days for r in daily[d][1])
        return None
    minima, ordinals = [daily[d][0] for d in ordered], [d.toordinal() for d in ordered]
    tx = [d.toordinal() for d in tx_days]
    for i, j in hemogram.qualifying_runs(minima, ordinals, tx, params, params.plt_cr_threshold):
        if j == len(ordered) - 1:  # the first run ending on the last day (ordered[j] == last)
            return tuple(r for d in ordered[i:j + 1] for r in daily[d][1])
    return None


def _sorted_up_to(daily: hemogram.Daily, as_of: date) -> list[date]:
    """The days of ``daily`` up to ``as_of``, sorted: sorted once here for every search and baseline test."""
    days = sorted(daily)
    return days if not days or days[-1] <= as_of else days[:bisect_right(days, as_of)]


def _null_reason(exit_reason: str | None, as_of: date, evaluation: date) -> str:
    if exit_reason is not None:
        return exit_reason
    return "not_reached" if as_of > evaluation else "pending"


def lineage_outcomes(
    labs: list[LabPoint], transfusions: list[TransfusionPoint], params: Protocol, *,
    transplant_day: date, msc_d1: date | None, as_of: date, exit_event: tuple[date, str] | None = None,
    daily: Mapping[str, hemogram.Daily] | None = None,
) -> LineageOutcomes:
    """The three hemogram endpoints with reasons; ``exit_event`` is (date, "died"|"withdrew").

    ``daily``: ``hemogram.daily_minima(labs)``, if the caller keeps it (the labs after ``as_of`` may be
    in it: they are left out here as they are from ``labs``); the result is the same either way.
    """
    anchor = hemogram.endpoint_anchor(params, transplant_day=transplant_day, msc_d1=msc_d1)
    if anchor is None:
        reasons = dict.fromkeys(("neutrophil_engraftment", "rbc_recovery", "platelet_response"), "not_treated")
        return LineageOutcomes(None, None, None, None, reasons, {})
    if daily is None:
        labs = [lab for lab in labs if lab.day <= as_of]
        minima: Mapping[str, hemogram.Daily] = hemogram.daily_minima(labs)
    else:  # the NR refs, the only other use of ``labs``, are taken up to as_of by platelet_response
        minima = daily  # its days after as_of are left out of ``days``, which every search walks
    days = {field: _sorted_up_to(minima[field], as_of) for field in hemogram.FIELDS}
    transfusions = [t for t in transfusions if t.day <= as_of]
    baseline: dict[str, tuple[str, ...]] = {}
    if msc_d1 is not None and params.baseline_met_not_evaluable and params.endpoint_anchor == "first_infusion":
        for name, refs in (
                ("neutrophil_engraftment", _anc_at_baseline(minima["anc"], days["anc"], params, msc_d1)),
                ("rbc_recovery", _rbc_at_baseline(minima["hb"], days["hb"], transfusions, params, msc_d1)),
                ("platelet_response", _plt_at_baseline(minima["plt"], days["plt"], transfusions, params, msc_d1))):
            if refs is not None:
                baseline[name] = refs
    exit_day = exit_event[0] if exit_event else None
    anc = None if "neutrophil_engraftment" in baseline else hemogram.neutrophil_engraftment(
        labs, params, anchor=anchor, transplant_day=transplant_day, msc_d1=msc_d1, daily=minima["anc"],
        ordered=days["anc"])
    rbc = None if "rbc_recovery" in baseline else hemogram.red_cell_recovery(
        labs, transfusions, params, anchor=anchor, transplant_day=transplant_day, msc_d1=msc_d1, daily=minima["hb"],
        ordered=days["hb"])
    plt = None if "platelet_response" in baseline else hemogram.platelet_response(
        labs, transfusions, params, anchor=anchor, as_of=as_of, msc_d1=msc_d1, transplant_day=transplant_day,
        exit_day=exit_day, daily=minima["plt"], ordered=days["plt"])

    reasons = dict.fromkeys(baseline, "met_at_baseline")
    evaluation = (msc_d1 or anchor) + timedelta(days=params.nr_evaluation_day)
    left = exit_event[1] if exit_event and exit_event[0] <= as_of else None
    for name, found in (("neutrophil_engraftment", anc), ("rbc_recovery", rbc)):
        if found is None and name not in reasons:
            reasons[name] = _null_reason(left, as_of, evaluation)
    response = "NE" if "platelet_response" in baseline else plt.response if plt else None
    if response is None:
        reasons["platelet_response"] = "pending"
    elif response == "NR" and plt is not None:
        if params.nr_on_early_exit and left is not None and plt.day == exit_day and exit_day <= evaluation:
            reasons["platelet_response"] = left
        elif msc_d1 is not None and hemogram.transfusion_dependent(transfusions, params, msc_d1):
            reasons["platelet_response"] = "transfusion_dependent"
        else:
            reasons["platelet_response"] = "evaluation_day_passed"
    return LineageOutcomes(anc, rbc, plt, response, reasons, baseline)
