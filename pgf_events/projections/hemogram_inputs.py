"""A patient's hemogram endpoint inputs, kept up to date event by event (issue 18: no quadratic reports).

:func:`~pgf_events.projections.derive.derive_patient` rebuilds every input from the whole patient:
right for one derivation, quadratic for a reader that needs the endpoint dates after each of a
patient's edits (``pgf audit exceptions`` asks before and after every lab or transfusion edit).

:class:`HemogramInputs` follows a patient while its events are applied. An event changes one entry
of the patient: a new record, or the root record that a correction or void supersedes (the
aggregate recomputes that root's effective value and voided flag, nothing else). So only that
root's contribution is taken out and put back:

- the standing labs and transfusions as rule inputs, in recording order (as ``Patient.active``
  lists them, with the same refs);
- each lab field's daily minima (:func:`pgf_events.domain.rules.hemogram.daily_minima`): per day
  the values of that day's labs, the minimum and refs recomputed for that day only;
- the multiset of the standing records' latest clinical dates, whose maximum (or the transplant
  date) is the evaluation date (:func:`pgf_events.projections.clinical.latest_clinical_date`).

:meth:`HemogramInputs.endpoint_dates` then runs the same rule functions as ``derive_patient``
(``lineage_outcomes``, given the kept minima). A property test checks it against ``derive_patient``
after every event of random histories with corrections, voids and reinstatements.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules.hemogram import FIELDS, Daily
from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint
from pgf_events.domain.rules.response import lineage_outcomes
from pgf_events.projections import clinical
from pgf_events.projections.derive import _trusted
from pgf_events.protocol import Protocol

# The endpoint dates of the endpoints section: its key, and the label the audit reports use.
ENDPOINTS = (
    ("neutrophil_engraftment_date", "neutrophil engraftment"),
    ("rbc_recovery_date", "red-cell recovery"),
    ("platelet_response_date", "platelet response"),
)


def _put(points: dict[int, Any], root: int, point: Any) -> None:
    """Set ``points[root]``, keeping the keys in version order (a reinstated record goes back in its place)."""
    if root in points or not points or root > next(reversed(points)):
        points[root] = point
        return
    points[root] = point
    ordered = sorted(points.items())
    points.clear()
    points.update(ordered)


class HemogramInputs:
    """The hemogram endpoint inputs of one patient; call :meth:`apply` after each event is applied."""

    def __init__(self) -> None:
        self.labs: dict[int, LabPoint] = {}  # root version -> rule input, in version order
        self.transfusions: dict[int, TransfusionPoint] = {}
        self.daily: dict[str, Daily] = {field: {} for field in FIELDS}
        self._values: dict[str, dict[date, dict[int, tuple[Any, str]]]] = {field: {} for field in FIELDS}
        self._latest: dict[int, date] = {}  # root version -> the latest clinical date of that standing record
        self._dates: Counter[date] = Counter()
        self._latest_date: date | None = None  # max(self._dates), kept; None: to compute (or no dates)

    def apply(self, patient: Patient, event: Any) -> None:
        """Take in what ``event`` (already applied to ``patient``) changed: the entry it made or superseded."""
        version = event.originator_version
        if version not in patient.entries:
            return
        root = patient._root(version)
        if root == 1:
            return  # the registration: its dates are read from the patient when needed
        entry = patient.entries[root]
        record: Any = entry.record if not entry.voided else None
        self._take_dates(root, record)
        if entry.kind == vo.LabPanel.KIND:
            self._take_lab(root, None if record is None else _trusted(
                LabPoint, day=record.date, ref=patient.ref(root), anc=record.anc, plt=record.plt, hb=record.hb))
        elif entry.kind == vo.Transfusion.KIND:
            if record is None:
                self.transfusions.pop(root, None)
            else:
                _put(self.transfusions, root, _trusted(TransfusionPoint, day=record.date, ref=patient.ref(root),
                                                       product=record.product))

    def _take_dates(self, root: int, record: Any) -> None:
        old = self._latest.pop(root, None)
        if old is not None:
            self._dates[old] -= 1
            if not self._dates[old]:
                del self._dates[old]
                if old == self._latest_date:
                    self._latest_date = None  # the latest date's last record: found again when asked
        latest = record.latest_clinical_day() if record is not None else None
        if latest is not None:
            self._latest[root] = latest
            self._dates[latest] += 1
            if self._latest_date is not None and latest > self._latest_date:
                self._latest_date = latest

    def _take_lab(self, root: int, point: LabPoint | None) -> None:
        old = self.labs.pop(root, None) if point is None else self.labs.get(root)
        if point is not None:
            _put(self.labs, root, point)
        for field in FIELDS:
            days = {p.day for p in (old, point) if p is not None and getattr(p, field) is not None}
            values = self._values[field]
            for day in days:
                bucket = values.setdefault(day, {})
                bucket.pop(root, None)
                if point is not None and point.day == day and getattr(point, field) is not None:
                    bucket[root] = (getattr(point, field), point.ref)
                self._refresh(field, day, bucket)

    def _refresh(self, field: str, day: date, bucket: dict[int, tuple[Any, str]]) -> None:
        """That day's minimum and refs, folded in version order exactly as ``hemogram._daily_min`` folds."""
        daily = self.daily[field]
        if not bucket:
            del self._values[field][day]
            daily.pop(day, None)
            return
        low: Any = None
        refs: tuple[str, ...] = ()
        for root in sorted(bucket):
            value, ref = bucket[root]
            low = value if low is None else min(low, value)
            refs += (ref,)
        daily[day] = (low, refs)

    def evaluation_date(self, patient: Patient) -> date:
        """:func:`clinical.latest_clinical_date`'s date: the latest clinical date, or the transplant."""
        transplant = patient.registration.transplant_date
        if not self._dates:
            return transplant
        if self._latest_date is None:  # max over every standing record's date only when it left
            self._latest_date = max(self._dates)
        return max(transplant, self._latest_date)

    def endpoint_dates(self, patient: Patient, params: Protocol) -> dict[str, date]:
        """The endpoint dates ``derive_patient(patient, params).endpoints`` gives, by label (those set)."""
        reg = patient.registration
        as_of = self.evaluation_date(patient)
        # MSC D1 as the dosing section fixes it (``assess_dosing``: the earliest standing infusion dated
        # on or before the evaluation date), without assessing every dose at every edit.
        msc_d1 = min((r.date for _, r in patient.active(vo.Infusion) if r.date <= as_of), default=None)
        exit_at = clinical.exit_event(patient)
        out = lineage_outcomes(list(self.labs.values()), list(self.transfusions.values()), params,
                               transplant_day=reg.transplant_date, msc_d1=msc_d1, as_of=as_of,
                               exit_event=exit_at[:2] if exit_at else None, daily=self.daily)
        found: dict[str, date | None] = {
            "neutrophil_engraftment_date": out.anc.day if out.anc else None,
            "rbc_recovery_date": out.rbc.day if out.rbc else None,
            "platelet_response_date": out.plt.day if out.plt and out.plt.response != "NR" else None,
        }
        return {label: day for key, label in ENDPOINTS if (day := found[key]) is not None}
