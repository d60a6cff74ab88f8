"""The Patient aggregate's side of the entry rules (:mod:`pgf_events.domain.rules.entry`).

A new record is checked against the patient's standing records; a correction or void is checked by
applying it to a copy of the patient and re-checking the whole stream, so a change can never
produce what entry would refuse. Impossibilities are refused; protocol deviations need an
acknowledgement (``--deviation "why"``), which the event then stores with the deviations it covers.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import latest_valid_date, parse_text
from pgf_events.domain.rules import entry
from pgf_events.domain.rules.entry import Finding, Item, Prior

if TYPE_CHECKING:
    from pgf_events.domain.patient import Context, Patient

FLAG = "--deviation"
NO_DEVIATION = f"{FLAG} acknowledges a protocol deviation, and this command makes none; leave it out"
# The registration fields that decide eligibility (IN2, age at screening).
ELIGIBILITY_FIELDS = {"register": ("birth_date",)}


def acknowledgements(findings: Sequence[Finding]) -> list[dict[str, str]]:
    """What an event stores of the deviations it acknowledges: ``[{"kind": ..., "ref": ...}]``."""
    seen: dict[tuple[str, str], None] = {}
    for f in findings:
        seen.setdefault(f.key)
    return [{"kind": kind, "ref": ref} for kind, ref in seen]


def ack_fields(deviation: str | None, acknowledged: list[dict[str, str]], deferred: bool = False) -> dict[str, Any]:
    """The optional event fields of an acknowledged deviation (none at all when there is none).

    A deferred change (see :class:`Batch`) keeps its text with an empty list; :func:`settle` fills in
    what it covers.
    """
    if deferred:
        return {} if deviation is None else {"deviation": clean_deviation(deviation), "acknowledged": []}
    if not acknowledged:
        return {}
    return {"deviation": clean_deviation(deviation), "acknowledged": acknowledged}


def clean_deviation(deviation: Any) -> str | None:
    return None if deviation is None else parse_text(deviation, "deviation", 500)


def items(patient: Patient) -> list[Item]:
    """The patient's standing records in recording order, with what is acknowledged on each."""
    out = []
    for e in patient.entries.values():
        if e.record is not None and not e.voided:
            ref = patient.ref(e.version)
            out.append(Item(ref, e.record, frozenset(patient.acknowledged.get(ref, ()))))
    return out


def check_new(patient: Patient, record: Any, ctx: Context, deviation: str | None) -> list[dict[str, str]]:
    """Check a record about to be entered; returns the acknowledgements its event stores."""
    deviation = clean_deviation(deviation)
    new = Item(patient.ref(patient.version + 1), record)
    findings = entry.check_entry(patient.prior(), new, ctx.protocol, latest_valid_date(ctx.now))
    return _judge(findings, deviation, "")


def check_change(patient: Patient, version: int, changes: dict[str, Any] | None, ctx: Context,
                 deviation: str | None, changed_fields: Collection[str] = ()) -> list[dict[str, str]]:
    """Check a correction (``changes``) or a void (``None``) of ``version`` against the whole stream.

    Findings that the stream already had before the change (e.g. recorded before these rules) do not
    block it; every new impossibility does, and every new unacknowledged deviation needs ``--deviation``.
    """
    deviation = clean_deviation(deviation)
    before = items(patient)
    after = items(_with_change(patient, version, changes))
    latest = latest_valid_date(ctx.now)
    old = {f.key for f in entry.check_stream(before, ctx.protocol, latest)}
    new = [f for f in entry.check_stream(after, ctx.protocol, latest) if f.key not in old]
    new = [f for f in new if f.impossible] + entry.unacknowledged(new, after)
    root = patient._root(version)
    root_kind = patient.entries[root].kind
    fields = ELIGIBILITY_FIELDS.get(root_kind)
    if fields is None or set(fields) & set(changed_fields) or changes is None:
        changed = entry.eligibility_changed(before, patient.ref(root))
        if changed is not None and changed.kind not in patient.acknowledged.get(changed.ref, ()):
            new.append(changed)
    what = "correction" if changes is not None else "void"
    return _judge(new, deviation, f"with this {what}, ", own=patient.ref(root))


def _with_change(patient: Patient, version: int, changes: dict[str, Any] | None) -> Patient:
    """A copy of the patient (sharing the unchanged records) with a correction or void applied."""
    clone = copy.copy(patient)
    clone.entries = {v: attrs.evolve(e, children=list(e.children)) for v, e in patient.entries.items()}
    clone._prior = None
    kind = "correct" if changes is not None else "void"
    clone._add_change(patient.version + 1, kind, patient.ref(version), "", changes or {})
    return clone


def _judge(findings: list[Finding], deviation: str | None, prefix: str, own: str | None = None) -> list[dict[str, str]]:
    def located(f: Finding) -> Finding:
        if not prefix or f.ref == own:
            return f
        return Finding(f.kind, f.impossible, f.ref, f.day, f"{f.ref}: {f.message}", f.refs, f.invalid_value)

    impossible = [located(f) for f in findings if f.impossible]
    if impossible:
        error = ValidationError if impossible[0].invalid_value else RuleViolation
        raise error(prefix + impossible[0].message)
    if not findings:
        if deviation is not None:
            raise ValidationError(NO_DEVIATION)
        return []
    if deviation is None:
        raise RuleViolation(prefix + entry.refusal([located(f) for f in findings], FLAG))
    return acknowledgements(findings)


class Batch:
    """Changes to one patient checked together: the stream before the first, and what they must answer for."""

    def __init__(self, before: list[Item]):
        self.before = before
        self.required: list[Finding] = []  # change-level deviations (an eligibility fact changed)

    def change(self, patient: Patient, version: int, changes: Mapping[str, Any] | None) -> None:
        root = patient._root(version)
        fields = ELIGIBILITY_FIELDS.get(patient.entries[root].kind)
        if fields is None or changes is None or set(fields) & set(changes):
            changed = entry.eligibility_changed(self.before, patient.ref(root))
            if changed is not None and changed.kind not in patient.acknowledged.get(changed.ref, ()):
                self.required.append(changed)


def settle(patient: Patient, batch: Batch, ctx: Context) -> None:
    """The stream with every deferred change applied must pass as if newly entered.

    New impossibilities are refused; new deviations need an acknowledgement on one of the changes
    (``"deviation"`` on a line of the file): the last such change stores what it covers.
    """
    latest = latest_valid_date(ctx.now)
    after = items(patient)
    old = {f.key for f in entry.check_stream(batch.before, ctx.protocol, latest)}
    new = [f for f in entry.check_stream(after, ctx.protocol, latest) if f.key not in old]
    problems = [f for f in new if f.impossible] + entry.unacknowledged(new, after) + batch.required
    acknowledging = [e for e in patient.pending_events if getattr(e, "acknowledged", None) == []]
    deviation = getattr(acknowledging[-1], "deviation", None) if acknowledging else None
    found = _judge(problems, deviation, "with these changes, ", own=None)
    if found:
        event = acknowledging[-1]
        object.__setattr__(event, "acknowledged", found)  # not yet saved: the unit is still being checked
        patient._acknowledge(found)


def prior_of(patient: Patient) -> Prior:
    return Prior(items(patient))
