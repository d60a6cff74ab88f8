"""Primary endpoint: hemogram recovery (clinical-rules.md, "Laboratory conventions" and
"Primary endpoint: hemogram recovery").

Every endpoint is searched from ``anchor`` onward; values before it only serve as look-back
(transfusion-free windows). Several values on one day collapse to that day's minimum, because
every rule here is a ">= threshold" rule (ANC engraftment, Hb >= 70, PLT >= 20/50). A date that
starts a qualifying run or window is always a measurement date. Results carry the refs of the lab
values used plus the latest relevant transfusion before the qualifying date (the look-back
evidence), and the day counted from both anchors (transplant = Day 0, and MSC D1).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import date, timedelta

import attrs

from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint, days_between
from pgf_events.protocol import Protocol

__all__ = ["Engraftment", "PlateletResponse", "RedCellRecovery", "days_between", "endpoint_anchor",
           "neutrophil_engraftment", "platelet_response", "red_cell_recovery"]

RESPONSE_RANK = {"CR": 3, "PR": 2, "NR": 1}


@attrs.frozen(kw_only=True)
class _Dated:
    day: date
    refs: tuple[str, ...]
    anchor: date
    days_from_anchor: int
    day_post_transplant: int | None = None
    days_since_msc_d1: int | None = None
    protocol_version: str = ""


@attrs.frozen(kw_only=True)
class Engraftment(_Dated):
    """Neutrophil engraftment: ``day`` is the first of the qualifying run; ``values`` its daily minima."""

    values: tuple[float, ...] = ()


@attrs.frozen(kw_only=True)
class RedCellRecovery(_Dated):
    """Red-cell recovery: ``day`` is the first transfusion-free Hb day with daily minimum >= threshold."""

    hb: float = 0.0


@attrs.frozen(kw_only=True)
class PlateletResponse(_Dated):
    """Best platelet response. For CR/PR ``day`` is the first window's start and ``window_end`` its
    last day; for NR ``day`` is the evaluation date (MSC D1 + ``nr_evaluation_day``)."""

    response: str
    window_end: date | None = None
    values: tuple[float, ...] = ()


def endpoint_anchor(params: Protocol, *, transplant_day: date | None, msc_d1: date | None) -> date | None:
    """The anchor date selected by ``params.endpoint_anchor`` ("Time anchors"); None if not yet known."""
    return transplant_day if params.endpoint_anchor == "transplant" else msc_d1


def _daily_min(labs: Iterable[LabPoint], field: str) -> dict[date, tuple[float, tuple[str, ...]]]:
    """Per day: the minimum of ``field`` and the refs of every value of that day."""
    out: dict[date, tuple[float, tuple[str, ...]]] = {}
    for lab in labs:
        value = getattr(lab, field)
        if value is None:
            continue
        old = out.get(lab.day)
        out[lab.day] = (value, (lab.ref,)) if old is None else (min(old[0], value), old[1] + (lab.ref,))
    return out


def _stamp(day: date, anchor: date, transplant_day: date | None, msc_d1: date | None, params: Protocol) -> dict:
    return dict(day=day, anchor=anchor, days_from_anchor=days_between(anchor, day),
                day_post_transplant=None if transplant_day is None else days_between(transplant_day, day),
                days_since_msc_d1=None if msc_d1 is None else days_between(msc_d1, day),
                protocol_version=params.version)


def _any_between(ordered_days: list[date], first: date, last: date) -> bool:
    """Whether any of the sorted ``ordered_days`` lies in ``first .. last`` (inclusive)."""
    i = bisect_left(ordered_days, first)
    return i < len(ordered_days) and ordered_days[i] <= last


def _latest_before(transfusions: Iterable[TransfusionPoint], product: str, day: date) -> tuple[str, ...]:
    prior = [t for t in transfusions if t.product == product and t.day <= day]
    return (max(prior, key=lambda t: (t.day, t.ref)).ref,) if prior else ()


def neutrophil_engraftment(
    labs: Iterable[LabPoint], params: Protocol, *, anchor: date,
    transplant_day: date | None = None, msc_d1: date | None = None,
) -> Engraftment | None:
    """First day of ``anc_consecutive_days`` consecutive ANC days above ``anc_threshold``.

    "Above" is ``anc_comparator`` ('>' protocol wording, '>=' CIBMTR). In ``consecutive_mode``
    'measurements' the run is consecutive measurement days (a failing day breaks it); in
    'calendar_days' the days must also be calendar-consecutive.
    """
    daily = _daily_min(labs, "anc")
    thr = params.anc_threshold
    run: list[date] = []
    for day in sorted(d for d in daily if d >= anchor):
        value = daily[day][0]
        passes = value > thr if params.anc_comparator == ">" else value >= thr
        if not passes:
            run = []
            continue
        contiguous = bool(run) and (params.consecutive_mode == "measurements" or (day - run[-1]).days == 1)
        run = run + [day] if contiguous else [day]
        if len(run) == params.anc_consecutive_days:
            refs = tuple(r for d in run for r in daily[d][1])
            return Engraftment(**_stamp(run[0], anchor, transplant_day, msc_d1, params), refs=refs,
                               values=tuple(daily[d][0] for d in run))
    return None


def red_cell_recovery(
    labs: Iterable[LabPoint], transfusions: Iterable[TransfusionPoint], params: Protocol, *,
    anchor: date, transplant_day: date | None = None, msc_d1: date | None = None,
) -> RedCellRecovery | None:
    """First Hb day (from ``anchor``) whose minimum is >= ``hb_threshold`` and that is not inside an
    RBC transfusion window: a transfusion on day t blocks t .. t + rbc_transfusion_free_days - 1."""
    daily = _daily_min(labs, "hb")
    rbc = [t for t in transfusions if t.product == "rbc"]
    rbc_days = sorted(t.day for t in rbc)
    span = params.rbc_transfusion_free_days
    for day in sorted(d for d in daily if d >= anchor):
        value, refs = daily[day]
        blocked = _any_between(rbc_days, day - timedelta(days=span - 1), day)
        if value >= params.hb_threshold and not blocked:
            return RedCellRecovery(**_stamp(day, anchor, transplant_day, msc_d1, params),
                                   refs=refs + _latest_before(rbc, "rbc", day), hb=value)
    return None


def _classify(values: list[float], params: Protocol) -> str | None:
    if all(v >= params.plt_cr_threshold for v in values):
        return "CR"
    if all(v >= params.plt_pr_threshold for v in values):
        return "PR"
    return None


def platelet_response(
    labs: Iterable[LabPoint], transfusions: Iterable[TransfusionPoint], params: Protocol, *,
    anchor: date, as_of: date, msc_d1: date | None, transplant_day: date | None = None,
) -> PlateletResponse | None:
    """Best platelet response CR > PR > NR and the first window achieving it; None while pending.

    A window starts on a PLT measurement date d >= ``anchor`` and covers d .. d + plt_window_days - 1.
    It is evaluated only once complete (its last day <= ``as_of``), needs at least
    ``min_counts_in_window`` measurement days (daily minima), and no platelet transfusion from
    d - plt_transfusion_free_before_days to its last day. NR once ``as_of`` is after
    MSC D1 + ``nr_evaluation_day`` with no CR/PR window; a later CR/PR still wins.
    """
    labs = list(labs)
    daily = _daily_min(labs, "plt")
    plt_tx = [t for t in transfusions if t.product == "platelets"]
    tx_days = sorted(t.day for t in plt_tx)
    ordered = sorted(daily)  # sorted once; each window is a slice of it (O(n log n), not O(n^2))
    found: dict[str, tuple[date, date, list[date]]] = {}
    for i in range(bisect_left(ordered, anchor), len(ordered)):
        start = ordered[i]
        end = start + timedelta(days=params.plt_window_days - 1)
        if end > as_of:
            break
        days = ordered[i:bisect_right(ordered, end, lo=i)]
        free_from = start - timedelta(days=params.plt_transfusion_free_before_days)
        if len(days) < params.min_counts_in_window or _any_between(tx_days, free_from, end):
            continue
        grade = _classify([daily[d][0] for d in days], params)
        if grade is not None and grade not in found:
            found[grade] = (start, end, days)
        if "CR" in found:
            break
    if found:
        best = max(found, key=RESPONSE_RANK.__getitem__)
        start, end, days = found[best]
        refs = tuple(r for d in days for r in daily[d][1])
        look_back = start - timedelta(days=params.plt_transfusion_free_before_days + 1)
        return PlateletResponse(**_stamp(start, anchor, transplant_day, msc_d1, params), response=best,
                                window_end=end, values=tuple(daily[d][0] for d in days),
                                refs=refs + _latest_before(plt_tx, "platelets", look_back))
    if msc_d1 is None:
        return None
    evaluation = msc_d1 + timedelta(days=params.nr_evaluation_day)
    if as_of <= evaluation:
        return None
    refs = tuple(lab.ref for lab in labs if lab.plt is not None and lab.day >= anchor)
    refs += tuple(t.ref for t in plt_tx if t.day >= anchor - timedelta(days=params.plt_transfusion_free_before_days))
    return PlateletResponse(**_stamp(evaluation, anchor, transplant_day, msc_d1, params), response="NR", refs=refs)
