"""Primary endpoint: hemogram recovery (docs/rules.md, "Laboratory conventions" and
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
from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import attrs

from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint, days_between
from pgf_events.protocol import Protocol

__all__ = ["Engraftment", "PlateletResponse", "RedCellRecovery", "days_between", "endpoint_anchor",
           "neutrophil_engraftment", "platelet_response", "qualifying_run", "qualifying_runs", "red_cell_recovery",
           "transfusion_dependent"]

RESPONSE_RANK = {"CR": 3, "PR": 2, "NR": 1}
FIELDS = ("anc", "hb", "plt")
Daily = dict[date, tuple[float, tuple[str, ...]]]  # day -> (the day's minimum, the refs of every value that day)


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
    """Best platelet response. For CR/PR ``day`` is the first run's first measurement and
    ``window_end`` its last measurement (v1: the window's last day); for NR ``day`` is the
    evaluation date (MSC D1 + ``nr_evaluation_day``) or the earlier death/withdrawal date."""

    response: str
    window_end: date | None = None
    values: tuple[float, ...] = ()


def endpoint_anchor(params: Protocol, *, transplant_day: date | None, msc_d1: date | None) -> date | None:
    """The anchor date selected by ``params.endpoint_anchor`` ("Time anchors"); None if not yet known."""
    return transplant_day if params.endpoint_anchor == "transplant" else msc_d1


def _daily_min(labs: Iterable[LabPoint], field: str) -> Daily:
    """Per day: the minimum of ``field`` and the refs of every value of that day (in ``labs`` order)."""
    out: dict[date, tuple[float, tuple[str, ...]]] = {}
    for lab in labs:
        value = getattr(lab, field)
        if value is None:
            continue
        old = out.get(lab.day)
        out[lab.day] = (value, (lab.ref,)) if old is None else (min(old[0], value), old[1] + (lab.ref,))
    return out


def daily_minima(labs: Iterable[LabPoint]) -> dict[str, Daily]:
    """:func:`_daily_min` of each of :data:`FIELDS`: what every search below starts from. A caller
    that keeps these up to date as labs come and go (``daily`` arguments) spares the searches a pass
    over every lab."""
    labs = list(labs)
    return {field: _daily_min(labs, field) for field in FIELDS}


def _stamp(day: date, anchor: date, transplant_day: date | None, msc_d1: date | None, params: Protocol) -> dict:
    return {"day": day, "anchor": anchor, "days_from_anchor": days_between(anchor, day),
                "day_post_transplant": None if transplant_day is None else days_between(transplant_day, day),
                "days_since_msc_d1": None if msc_d1 is None else days_between(msc_d1, day),
                "protocol_version": params.version}


def _from(daily: Daily, anchor: date, ordered: list[date] | None = None) -> list[date]:
    """The days of ``daily`` from ``anchor`` on, sorted (sorting every key and cutting is done in C);
    ``ordered``: the days to take instead of every key of ``daily``, sorted (a caller's, sorted once)."""
    days = sorted(daily) if ordered is None else ordered
    return days[bisect_left(days, anchor):]


def _any_between(ordered_days: list[date], first: date, last: date) -> bool:
    """Whether any of the sorted ``ordered_days`` lies in ``first .. last`` (inclusive)."""
    i = bisect_left(ordered_days, first)
    return i < len(ordered_days) and ordered_days[i] <= last


def _latest_before(transfusions: Iterable[TransfusionPoint], product: str, day: date) -> tuple[str, ...]:
    prior = [t for t in transfusions if t.product == product and t.day <= day]
    return (max(prior, key=lambda t: (t.day, t.ref)).ref,) if prior else ()


def neutrophil_engraftment(
    labs: Iterable[LabPoint], params: Protocol, *, anchor: date,
    transplant_day: date | None = None, msc_d1: date | None = None, daily: Daily | None = None,
    ordered: list[date] | None = None,
) -> Engraftment | None:
    """First day of ``anc_consecutive_days`` consecutive ANC days above ``anc_threshold``.

    "Above" is ``anc_comparator`` ('>' protocol wording, '>=' CIBMTR). In ``consecutive_mode``
    'measurements' the run is consecutive measurement days (a failing day breaks it); in
    'calendar_days' the days must also be calendar-consecutive.
    """
    daily = _daily_min(labs, "anc") if daily is None else daily  # daily: _daily_min(labs, "anc") given
    thr = params.anc_threshold
    run: list[date] = []
    for day in _from(daily, anchor, ordered):
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
    anchor: date, transplant_day: date | None = None, msc_d1: date | None = None, daily: Daily | None = None,
    ordered: list[date] | None = None,
) -> RedCellRecovery | None:
    """First Hb day (from ``anchor``) whose minimum is >= ``hb_threshold`` and that is not inside an
    RBC transfusion window: a transfusion on day t blocks t .. t + rbc_transfusion_free_days - 1."""
    daily = _daily_min(labs, "hb") if daily is None else daily
    rbc = [t for t in transfusions if t.product == "rbc"]
    rbc_days = sorted(t.day for t in rbc)
    span = params.rbc_transfusion_free_days
    for day in _from(daily, anchor, ordered):
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


Run = tuple[date, date, list[date]]  # first measurement, last measurement (or window end), the days


def _window_runs(daily: dict, ordered: list[date], tx_days: list[date], params: Protocol, *,
                 first: int, as_of: date) -> dict[str, Run]:
    """v1: fixed windows d .. d + plt_window_days - 1 with at least ``min_counts_in_window`` days."""
    found: dict[str, Run] = {}
    for i in range(first, len(ordered)):
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
    return found


def qualifying_run(daily: dict, ordered: list[date], tx_days: list[date], params: Protocol,
                   threshold: float, i: int) -> Run | None:
    """The shortest qualifying run at ``threshold`` starting at measurement ``ordered[i]`` (v2), if any.

    Consecutive measurement days, every daily minimum >= threshold, at least ``plt_min_counts`` of
    them, at most ``plt_max_gap_days`` apart, the last at least ``plt_sustain_days - 1`` days after
    the first, and no platelet transfusion from ``plt_transfusion_free_before_days`` before the first
    through the last. The shortest run is the one with the fewest transfusion days in it. This is
    the rule's definition, start by start; the searches use :func:`qualifying_runs` (the same runs,
    property-tested, in one pass).
    """
    start = ordered[i]
    if daily[start][0] < threshold:
        return None
    span = params.plt_sustain_days - 1
    for j in range(i, len(ordered)):
        day = ordered[j]
        if daily[day][0] < threshold or (j > i and (day - ordered[j - 1]).days > params.plt_max_gap_days):
            return None
        if j - i + 1 >= params.plt_min_counts and (day - start).days >= span:
            free_from = start - timedelta(days=params.plt_transfusion_free_before_days)
            return None if _any_between(tx_days, free_from, day) else (start, day, ordered[i:j + 1])
    return None


def qualifying_runs(minima: list[float], days: list[int], tx_days: list[int], params: Protocol,
                    threshold: float, *, first: int = 0) -> Iterator[tuple[int, int]]:
    """Each start ``i >= first`` (in order) whose shortest qualifying run (:func:`qualifying_run`)
    exists, with that run's last index: ``(i, j)``, the run being measurements ``i .. j``.
    ``minima``: the daily minima in day order, ``days`` their days and ``tx_days`` the platelet
    transfusion days, sorted, as ordinals (``date.toordinal``).

    One pass: the measurements split into segments where every minimum passes and no gap is too
    long (a run lies inside one); within a segment, the shortest run's end never moves back as the
    start moves on (a later start needs as many counts and as long a span), so start, end and the
    next transfusion to look at all move forward only. A transfusion-blocked shortest run is no run:
    a longer one from that start would only cover more days.
    """
    n, need, span = len(days), params.plt_min_counts, params.plt_sustain_days - 1
    max_gap, before, n_tx = params.plt_max_gap_days, params.plt_transfusion_free_before_days, len(tx_days)
    passes = [value >= threshold for value in minima]
    i, k = first, 0  # k: the first transfusion not before the current start's look-back
    while i < n:
        if not passes[i]:
            i += 1
            continue
        end = i + 1  # the segment is i .. end - 1
        while end < n and passes[end] and days[end] - days[end - 1] <= max_gap:
            end += 1
        j = i
        for start in range(i, end):
            if j < start:
                j = start
            while j < end and (j - start + 1 < need or days[j] - days[start] < span):
                j += 1
            if j == end:
                break  # no later start of this segment has a run either
            while k < n_tx and tx_days[k] < days[start] - before:
                k += 1
            if k == n_tx or tx_days[k] > days[j]:
                yield start, j
        i = end


def _sustained_runs(daily: dict, ordered: list[date], tx_days: list[date], params: Protocol, *,
                    first: int) -> dict[str, Run]:
    """v2: the first qualifying run at the CR threshold and, failing that, the first at the PR threshold."""
    minima, days = [daily[d][0] for d in ordered], [d.toordinal() for d in ordered]
    tx = [d.toordinal() for d in tx_days]
    for grade, threshold in (("CR", params.plt_cr_threshold), ("PR", params.plt_pr_threshold)):
        for i, j in qualifying_runs(minima, days, tx, params, threshold, first=first):
            return {grade: (ordered[i], ordered[j], ordered[i:j + 1])}
    return {}


def platelet_days(labs: Iterable[LabPoint], as_of: date, daily: Daily | None = None,
                  ordered: list[date] | None = None) -> tuple[dict, list[date]]:
    """Daily platelet minima up to ``as_of`` and their sorted days (``daily``: ``_daily_min(labs, "plt")``;
    ``ordered``: its days sorted, if the caller has them)."""
    daily = _daily_min(labs, "plt") if daily is None else daily
    ordered = sorted(daily) if ordered is None else ordered
    if ordered and ordered[-1] > as_of:
        ordered = ordered[:bisect_right(ordered, as_of)]
        daily = {d: daily[d] for d in ordered}
    return daily, ordered


def platelet_response(
    labs: Iterable[LabPoint], transfusions: Iterable[TransfusionPoint], params: Protocol, *,
    anchor: date, as_of: date, msc_d1: date | None, transplant_day: date | None = None,
    exit_day: date | None = None, daily: Daily | None = None, ordered: list[date] | None = None,
) -> PlateletResponse | None:
    """Best platelet response CR > PR > NR and the first run achieving it; None while pending.

    ``plt_rule`` "sustained_run" (v2, :func:`qualifying_run`) or "window" (v1: a window starts on
    a PLT measurement date d >= ``anchor``, covers d .. d + plt_window_days - 1, is evaluated once
    complete, needs ``min_counts_in_window`` measurement days and no platelet transfusion from
    d - plt_transfusion_free_before_days to its last day). Only measurements up to ``as_of``
    count. NR once ``as_of`` is after MSC D1 + ``nr_evaluation_day`` with no CR/PR run, or (with
    ``nr_on_early_exit``) when the patient died or withdrew (``exit_day``) on or before that day;
    a later CR/PR still wins. The NR result's ``reason`` says which (:func:`nr_reason`).
    """
    if daily is None:
        labs = list(labs)  # read twice (here and for the NR refs)
    daily, ordered = platelet_days(labs, as_of, daily, ordered)
    plt_tx = [t for t in transfusions if t.product == "platelets"]
    tx_days = sorted(t.day for t in plt_tx)
    first = bisect_left(ordered, anchor)
    if params.plt_rule == "window":
        found = _window_runs(daily, ordered, tx_days, params, first=first, as_of=as_of)
    else:
        found = _sustained_runs(daily, ordered, tx_days, params, first=first)
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
    early_exit = params.nr_on_early_exit and exit_day is not None and exit_day <= evaluation
    if as_of <= evaluation and not early_exit:
        return None
    nr_day = exit_day if early_exit and exit_day is not None else evaluation
    refs = tuple(lab.ref for lab in labs if lab.plt is not None and anchor <= lab.day <= as_of)
    refs += tuple(t.ref for t in plt_tx if t.day >= anchor - timedelta(days=params.plt_transfusion_free_before_days))
    return PlateletResponse(**_stamp(nr_day, anchor, transplant_day, msc_d1, params), response="NR", refs=refs)


def transfusion_dependent(transfusions: Iterable[TransfusionPoint], params: Protocol, msc_d1: date) -> bool:
    """A platelet transfusion in the ``plt_transfusion_free_before_days`` days before the evaluation day."""
    evaluation = msc_d1 + timedelta(days=params.nr_evaluation_day)
    first = evaluation - timedelta(days=params.plt_transfusion_free_before_days)
    return any(t.product == "platelets" and first <= t.day < evaluation for t in transfusions)
