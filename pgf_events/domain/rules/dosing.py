"""Dose-to-window assignment and adherence (docs/rules.md, "Dosing").

The first infusion is dose 1 and fixes MSC D1; dose k targets D1 + (k-1) * ``dose_interval_days``
with a window of ± ``dose_window_days``. Each later infusion on day d takes the next unassigned
dose k; while dose k+1 exists and d >= target(k+1) - window, dose k is missed and k advances (a
late dose is never doubled up with the next one). The infusion is then dose k: early before the
window, late after it, otherwise on time. Once every planned dose is assigned, further infusions
are listed as ``extra_infusion`` deviations and never assigned. A dose with no infusion whose
window has closed as of ``as_of`` (``as_of > target + window``) is missed; otherwise pending.
v2: a dose with no infusion whose window had not closed when the patient died or withdrew
(``stopped`` = (date, reason), date <= target + window) is ``discontinued`` with that reason,
never pending or missed; adherence counts it apart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import attrs

from pgf_events.domain.rules.inputs import InfusionPoint
from pgf_events.protocol import Protocol

STATUSES = ("on_time", "early", "late", "missed", "pending", "discontinued")


@attrs.frozen
class DoseResult:
    """One planned dose: its target date, the infusion assigned to it (if any) and how it went."""

    number: int
    target: date | None
    status: str
    day: date | None = None
    days_from_target: int | None = None
    cells_per_kg: float | None = None
    deviation: float | None = None
    within_tolerance: bool | None = None
    refs: tuple[str, ...] = ()
    reason: str | None = None  # why a dose was discontinued


@attrs.frozen
class DosingDeviation:
    """One line of the dosing-deviation listing, with the events it is about."""

    dose: int | None
    kind: str  # early | late | missed | dose_out_of_tolerance | gap_below_minimum | extra_infusion
    detail: str
    refs: tuple[str, ...] = ()


@attrs.frozen
class DosingSummary:
    """Per-patient adherence report (docs/rules.md, "Dosing", last bullet)."""

    msc_d1: date | None
    planned: int
    given: int
    on_time: int
    early: int
    late: int
    missed: int
    pending: int
    discontinued: int
    cumulative_cells_per_kg: float
    planned_cumulative_cells_per_kg: float
    relative_dose_intensity: float
    completed: bool
    discontinuation_reason: str | None
    doses: tuple[DoseResult, ...]
    deviations: tuple[DosingDeviation, ...]
    refs: tuple[str, ...]
    protocol_version: str


def _within(deviation: float, tolerance: float) -> bool:
    # Inclusive edge, robust to float noise: 1.1e6/1e6 - 1 is 0.10000000000000009, not > 0.10.
    return abs(deviation) <= tolerance or math.isclose(abs(deviation), tolerance, rel_tol=1e-9)


def _assigned(number: int, target: date, inf: InfusionPoint, params: Protocol) -> DoseResult:
    offset = (inf.day - target).days
    w = params.dose_window_days
    status = "early" if offset < -w else "late" if offset > w else "on_time"
    per_kg = inf.cells_per_kg
    dev = (per_kg - params.dose_cells_per_kg) / params.dose_cells_per_kg
    return DoseResult(number, target, status, inf.day, offset, per_kg, dev,
                      _within(dev, params.dose_tolerance), (inf.ref,))


def _deviations_for(dose: DoseResult, params: Protocol) -> list[DosingDeviation]:
    out: list[DosingDeviation] = []
    if dose.status in ("early", "late"):
        out.append(DosingDeviation(dose.number, dose.status,
                                   f"dose {dose.number} given {dose.day} ({dose.days_from_target:+d} days "
                                   f"from target {dose.target}, window ±{params.dose_window_days})", dose.refs))
    elif dose.status == "missed":
        out.append(DosingDeviation(dose.number, "missed",
                                   f"dose {dose.number} (target {dose.target}) was not given", dose.refs))
    if dose.within_tolerance is False:
        out.append(DosingDeviation(dose.number, "dose_out_of_tolerance",
                                   f"dose {dose.number} was {dose.cells_per_kg:.3g} cells/kg "
                                   f"({dose.deviation:+.1%} vs planned, tolerance ±{params.dose_tolerance:.0%})",
                                   dose.refs))
    return out


def assess_dosing(
    infusions: Iterable[InfusionPoint],
    params: Protocol,
    *,
    as_of: date | None = None,
    discontinuation_reason: str | None = None,
    stopped: tuple[date, str, tuple[str, ...]] | None = None,
) -> DosingSummary:
    """Assign infusions to planned doses and summarise adherence ("Dosing").

    Infusions dated after ``as_of`` are ignored (not yet given as of that day). With
    ``as_of=None`` no window is considered closed, so unassigned doses stay pending.
    ``cumulative_cells_per_kg`` sums every infusion given, extra ones included. ``stopped`` is
    (date, reason, refs) of the death or withdrawal that ended the course, if any.
    """
    # Stable sort: infusions on the same day keep the order the caller (event order) gave them.
    infs = sorted((i for i in infusions if as_of is None or i.day <= as_of), key=lambda i: i.day)
    n, interval, w = params.planned_doses, params.dose_interval_days, params.dose_window_days
    window = timedelta(days=w)
    doses: list[DoseResult] = []
    deviations: list[DosingDeviation] = []
    d1 = infs[0].day if infs else None
    # targets[k-1]: dose k's target date (None while no infusion has fixed MSC D1)
    targets: list[Any] = [d1 + timedelta(days=k * interval) if d1 else None for k in range(n)]
    anchor_refs = (infs[0].ref,) if infs else ()  # MSC D1 fixes every target

    k = 1
    for inf in infs:
        if k > n:
            deviations.append(DosingDeviation(None, "extra_infusion",
                                              f"infusion on {inf.day} is beyond the {n} planned doses", (inf.ref,)))
            continue
        while k < n and inf.day >= targets[k] - window:  # targets[k] is dose k+1's target
            doses.append(DoseResult(k, targets[k - 1], "missed", refs=anchor_refs + (inf.ref,)))
            k += 1
        doses.append(_assigned(k, targets[k - 1], inf, params))
        k += 1
    for rest in range(k, n + 1):
        t = targets[rest - 1]
        if stopped is not None and (t is None or stopped[0] <= t + window):
            doses.append(DoseResult(rest, t, "discontinued", refs=anchor_refs + stopped[2], reason=stopped[1]))
            continue
        closed = t is not None and as_of is not None and as_of > t + window
        doses.append(DoseResult(rest, t, "missed" if closed else "pending", refs=anchor_refs if closed else ()))
    for dose in doses:
        deviations.extend(_deviations_for(dose, params))
    for prev, cur in itertools.pairwise(infs):
        gap = (cur.day - prev.day).days
        if gap < params.min_dose_gap_days:
            deviations.append(DosingDeviation(None, "gap_below_minimum",
                                              f"infusions on {prev.day} and {cur.day} are {gap} days apart "
                                              f"(minimum {params.min_dose_gap_days})", (prev.ref, cur.ref)))
    deviations.sort(key=lambda d: (d.dose is None, d.dose or 0, d.kind))

    count = {s: sum(1 for d in doses if d.status == s) for s in STATUSES}
    given = count["on_time"] + count["early"] + count["late"]
    cumulative = sum(i.cells_per_kg for i in infs)
    planned_total = n * params.dose_cells_per_kg
    return DosingSummary(
        msc_d1=d1, planned=n, given=given, on_time=count["on_time"], early=count["early"],
        late=count["late"], missed=count["missed"], pending=count["pending"], discontinued=count["discontinued"],
        cumulative_cells_per_kg=cumulative, planned_cumulative_cells_per_kg=planned_total,
        relative_dose_intensity=cumulative / planned_total, completed=given == n,
        discontinuation_reason=discontinuation_reason, doses=tuple(doses),
        deviations=tuple(deviations), refs=tuple(i.ref for i in infs), protocol_version=params.version,
    )
