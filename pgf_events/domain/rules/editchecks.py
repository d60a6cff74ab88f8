"""Edit checks behind the automatic queries. Pure: a patient's standing records in, findings out.

Each finding has a stable key (check name and the ref or dose it is about), so the same finding
raises one query only, and a finding that disappears (the value corrected, the awareness time
entered, the dose recorded) closes its query.

- ``implausible_lab``: a blood count inside the accepted range but outside the plausible one
  (:data:`PLAUSIBLE`), e.g. ANC 45 ×10⁹/L: possible to enter, likely a unit or typing error.
- ``sae_awareness``: a serious adverse event without an awareness time (its reporting clocks then
  run from the onset day, which may be unfair to the site or hide a late report).
- ``sae_expectedness``: a serious adverse event whose expectedness is not recorded: SUSAR
  assessment needs it (and the reporting clocks treat a missing answer as unexpected).
- ``missed_dose``: a planned dose whose window closed (by the patient's latest clinical date)
  without an infusion and without a death or withdrawal explaining it.
"""

from __future__ import annotations

from datetime import date

import attrs

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules.dosing import assess_dosing
from pgf_events.domain.rules.inputs import InfusionPoint
from pgf_events.protocol import Protocol

# Plausible bands of the blood counts (the record's own validation accepts a wider range).
PLAUSIBLE: dict[str, tuple[float, float]] = {"anc": (0.0, 30.0), "plt": (0.0, 1000.0), "hb": (40.0, 200.0)}
CHECKS = ("implausible_lab", "sae_awareness", "sae_expectedness", "missed_dose")


@attrs.frozen
class Finding:
    key: str  # check:what, stable across runs
    ref: str
    field: str | None
    text: str


def edit_checks(patient: Patient, params: Protocol) -> list[Finding]:
    out: list[Finding] = []
    ref = patient.ref
    for v, lab in patient.active(vo.LabPanel):
        for name, (low, high) in PLAUSIBLE.items():
            value = getattr(lab, name)
            if value is not None and not low <= value <= high:
                out.append(Finding(f"implausible_lab:{ref(v)}:{name}", ref(v), name,
                                   f"{name} {value:g} on {lab.date} is outside the plausible range {low:g}-{high:g}; "
                                   "please confirm against the lab report or correct it"))
    for v, ae in patient.active(vo.AdverseEvent):
        if not ae.serious:
            continue
        if ae.aware is None:
            out.append(Finding(f"sae_awareness:{ref(v)}", ref(v), "aware",
                               f"serious AE '{ae.term}' (onset {ae.onset}) has no awareness time; "
                               "enter when the site became aware"))
        if ae.expected is None:
            out.append(Finding(f"sae_expectedness:{ref(v)}", ref(v), "expected",
                               f"serious AE '{ae.term}' has no expectedness; record whether it is expected"))
    out.extend(_missed_doses(patient, params))
    return out


def _missed_doses(patient: Patient, params: Protocol) -> list[Finding]:
    infusions = [InfusionPoint(day=r.date, ref=patient.ref(v), cells=r.cells, weight_kg=r.weight_kg)
                 for v, r in patient.active(vo.Infusion)]
    if not infusions:
        return []
    latest = max(day for _, r in patient.clinical_records() for _, day in r.clinical_dates())
    exits = _exits(patient)
    stopped = min(exits) if exits else None
    summary = assess_dosing(infusions, params, as_of=latest, stopped=stopped)
    return [
        Finding(f"missed_dose:{dose.number}", dose.refs[0] if dose.refs else infusions[0].ref, None,
                f"dose {dose.number} (target {dose.target}) was not given and no reason is recorded; "
                "record the infusion, or answer with the reason")
        for dose in summary.doses if dose.status == "missed"
    ]


def _exits(patient: Patient) -> list[tuple[date, str, tuple[str, ...]]]:
    out: list[tuple[date, str, tuple[str, ...]]] = []
    for found, why in ((patient.death, "death"), (patient.withdrawal, "withdrawal")):
        if found is not None:
            out.append((found[1].date, why, (patient.ref(found[0]),)))
    return out
