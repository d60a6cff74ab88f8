"""The clinical time frame of a patient's derived state: evaluation date, cut-off, exit and day numbering
(the dosing and endpoint derivations are in :mod:`.sections`).

Clinical dates only (docs/rules.md v2, "Time anchors"): the evaluation date, the last date
known alive and every endpoint use the dates on which something happened to the patient
(:meth:`~pgf_events.domain.values.Record.clinical_dates`), never an AE awareness time or a
recorded time.

Cohort cut-off (v2, ``--cutoff C``): the patient is evaluated as of C. :func:`cut_off` hides every
record whose clinical date is after C (as if it had not happened yet), dose windows and the
platelet evaluation day that closed by C count as closed (the evaluation date is C), and
censoring happens at the last date known alive on or before C.

Day numbering (v2): ``day_post_transplant`` counts from day 0 = transplant; ``msc_day`` is the
protocol's D-number, D1 = first infusion, D-1 the day before, no D0 (:func:`msc_day`).
"""

from __future__ import annotations

import copy
from datetime import date

import attrs

from pgf_events.domain.patient import Patient

DAY_LABELS = {"day_post_transplant": "day post-transplant (transplant = day 0)",
              "msc_day": "MSC day (D1 = first infusion, no D0)"}


def msc_day(d1: date | None, day: date | None) -> int | None:
    """The protocol's D-number of ``day``: D1 = ``d1``, D2 the next day, D-1 the day before; no D0."""
    if d1 is None or day is None:
        return None
    n = (day - d1).days
    return n + 1 if n >= 0 else n


def latest_clinical_date(patient: Patient) -> tuple[date, list[int]]:
    """The latest clinical date of any standing record (or the transplant) and the versions holding it."""
    latest, versions = patient.registration.transplant_date, [1]
    for version, record in patient.clinical_records():
        day = record.latest_clinical_day()
        if day is None:
            continue
        if day > latest:
            latest, versions = day, [version]
        elif day == latest:
            versions.append(version)
    return latest, versions


def cut_off(patient: Patient, cutoff: date) -> Patient:
    """A read-only view of ``patient`` in which records dated after ``cutoff`` are not yet there.

    A record is dated by its clinical date (an AE by its onset, a lab by its date); the original
    aggregate is untouched.
    """
    view = copy.copy(patient)
    entries = {}
    for version, entry in patient.entries.items():
        record = entry.record
        if version != 1 and record is not None and not entry.voided and record.clinical_date > cutoff:
            entry = attrs.evolve(entry, voided=True)
        entries[version] = entry
    view.entries = entries
    return view


def exit_event(patient: Patient) -> tuple[date, str, str] | None:
    """The death or withdrawal that ended the patient's participation: (date, reason code, ref)."""
    exits = []
    if patient.death is not None:
        exits.append((patient.death[1].date, "died", patient.ref(patient.death[0])))
    if patient.withdrawal is not None:
        exits.append((patient.withdrawal[1].date, "withdrew", patient.ref(patient.withdrawal[0])))
    return min(exits) if exits else None
