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
from pgf_events.domain.rules.entry import history_free
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
    return EditFacts.of(patient).findings(params)


def facts_after(kept: tuple[int, EditFacts] | None, patient: Patient) -> EditFacts:
    """``EditFacts.of(patient)``, built on ``kept`` (the facts of the same stream at an earlier, stored
    version, as a long-running process keeps them) when that version is the patient's before its
    pending events and each of those is a new history-free record: one :meth:`EditFacts.add` each, as
    the bulk import keeps its patients' facts. Anything else is read from the whole patient. ``kept``
    is left as it was."""
    pending = patient.pending_events
    if kept is None or kept[0] != patient.version - len(pending) or not all(
            isinstance(e, Patient.Recorded) and history_free(e.record.KIND) for e in pending):
        return EditFacts.of(patient)
    facts = kept[1].copy()
    for e in pending:
        facts.add(patient.ref(e.originator_version), e.record)  # type: ignore[attr-defined]  # a Recorded (above)
    return facts


def _lab_findings(ref: str, lab: vo.LabPanel) -> list[Finding]:
    out = []
    for name, (low, high) in PLAUSIBLE.items():
        value = getattr(lab, name)
        if value is not None and not low <= value <= high:
            out.append(Finding(f"implausible_lab:{ref}:{name}", ref, name,
                               f"{name} {value:g} on {lab.date} is outside the plausible range {low:g}-{high:g}; "
                               "please confirm against the lab report or correct it"))
    return out


def _ae_findings(ref: str, ae: vo.AdverseEvent) -> list[Finding]:
    out: list[Finding] = []
    if not ae.serious:
        return out
    if ae.aware is None:
        out.append(Finding(f"sae_awareness:{ref}", ref, "aware",
                           f"serious AE '{ae.term}' (onset {ae.onset}) has no awareness time; "
                           "enter when the site became aware"))
    if ae.expected is None:
        out.append(Finding(f"sae_expectedness:{ref}", ref, "expected",
                           f"serious AE '{ae.term}' has no expectedness; record whether it is expected"))
    return out


@attrs.define
class EditFacts:
    """What the edit checks read of a patient: the findings of its labs and AEs, its infusions, its
    latest clinical date and its exits. Built from the aggregate (:meth:`of`) and, by the bulk import,
    kept up to date as records that change none of the rest are appended (:meth:`add`)."""

    labs: list[Finding]
    aes: list[Finding]
    infusions: list[InfusionPoint]
    latest: date | None
    exits: list[tuple[date, str, tuple[str, ...]]]

    @classmethod
    def of(cls, patient: Patient) -> EditFacts:
        ref = patient.ref
        labs = [f for v, lab in patient.active(vo.LabPanel) for f in _lab_findings(ref(v), lab)]
        aes = [f for v, ae in patient.active(vo.AdverseEvent) for f in _ae_findings(ref(v), ae)]
        infusions = [InfusionPoint(day=r.date, ref=ref(v), cells=r.cells, weight_kg=r.weight_kg)
                     for v, r in patient.active(vo.Infusion)]
        days = [day for _, r in patient.clinical_records() for _, day in r.clinical_dates()]
        return cls(labs, aes, infusions, max(days) if days else None, _exits(patient))

    def copy(self) -> EditFacts:
        return EditFacts(list(self.labs), list(self.aes), list(self.infusions), self.latest, list(self.exits))

    def add(self, ref: str, record: vo.Record) -> None:
        """A new standing record that is not an infusion, a death or a withdrawal (those change more)."""
        assert not isinstance(record, (vo.Infusion, vo.Death, vo.Withdrawal, vo.Registration))
        if isinstance(record, vo.LabPanel):
            self.labs += _lab_findings(ref, record)
        elif isinstance(record, vo.AdverseEvent):
            self.aes += _ae_findings(ref, record)
        day = record.latest_clinical_day()  # the latest of record.clinical_dates(), without the list
        if day is not None and (self.latest is None or day > self.latest):
            self.latest = day

    def findings(self, params: Protocol) -> list[Finding]:
        return [*self.labs, *self.aes, *self._missed_doses(params)]

    def _missed_doses(self, params: Protocol) -> list[Finding]:
        infusions = self.infusions
        if not infusions:
            return []
        assert self.latest is not None  # an infusion is a clinical record
        stopped = min(self.exits) if self.exits else None
        summary = assess_dosing(infusions, params, as_of=self.latest, stopped=stopped)
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
