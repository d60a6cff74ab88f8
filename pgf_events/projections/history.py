"""A patient's history for humans and auditors: every event, nothing hidden.

Built by replaying the stream event by event (the aggregate's own ``apply``), so a correction can
show each field's value before and after it, and a void names what it voided. ``as_of`` keeps
only events recorded up to that time: the history as the database knew it then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.patient import CORRECTION, SIGN, VOID, Patient
from pgf_events.formatting import show
from pgf_events.projections.signatures import signatures


def history_rows(events: Iterable[Any], as_of: datetime | None = None) -> list[dict[str, Any]]:
    patient: Patient | None = None
    rows: list[dict[str, Any]] = []
    shown: list[Any] = []
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        shown.append(event)
        kind = EVENT_KINDS.get(type(event), type(event).__name__)
        before = None
        if kind in (CORRECTION, VOID) and patient is not None:
            target = int(event.supersedes.rpartition("#")[2])
            root = patient._root(target)
            before = patient.entries[root].record
        patient = event.mutate(patient)
        assert patient is not None
        row: dict[str, Any] = {
            "ref": patient.ref(event.originator_version),
            "version": event.originator_version,
            "type": type(event).__name__,
            "kind": kind,
            "clinical_date": None,
            "recorded_at": event.timestamp,
            "recorded_by": event.recorded_by,
            "source": event.source,
            "reason": getattr(event, "reason", None),
            "supersedes": getattr(event, "supersedes", None),
            "deviation": getattr(event, "deviation", None),  # a protocol deviation's acknowledgement
            "data": {},
            "status": "",
        }
        if kind == CORRECTION:
            target = int(event.supersedes.rpartition("#")[2])
            after = patient.entries[patient._root(target)].record
            row["clinical_date"] = after.clinical_date if after else None
            row["data"] = {
                field: {"old": getattr(before, field, None), "new": getattr(after, field, None)}
                for field in event.changes
            }
            row["corrects"] = patient.ref(patient._root(target))
        elif kind == VOID:
            target = int(event.supersedes.rpartition("#")[2])
            root_entry = patient.entries[patient._root(target)]
            row["clinical_date"] = root_entry.record.clinical_date if root_entry.record else None
            row["data"] = {"voided": event.supersedes, "voided_kind": patient.entries[target].kind,
                           "voided_values": _voided_values(patient, target, before)}
        elif kind == SIGN:
            row["data"] = {
                "meaning": event.meaning, "signed_at": event.signed_at,
                "covers": f"{patient.ref(1)}..#{event.stream_version}", "stream_hash": event.stream_hash,
            }
        else:
            row["clinical_date"] = event.record.clinical_date
            row["data"] = event.record.as_input()
        rows.append(row)
    if patient is not None:
        _mark_status(rows, patient)
        _mark_signatures(rows, shown)
    return rows


def _mark_signatures(rows: list[dict[str, Any]], events: list[Any]) -> None:
    by_ref = {row["ref"]: row for row in rows}
    for signature in signatures(events):
        by_ref[signature["ref"]]["status"] = (
            "valid" if signature["valid"] else f"invalidated by {signature['invalidated_by']}"
        )


def _mark_status(rows: list[dict[str, Any]], patient: Patient) -> None:
    """Say of each row whether it stands, is corrected, or is voided (as of the last event shown)."""
    for row in rows:
        entry = patient.entries[row["version"]]
        notes = []
        if entry.voided:
            voids = [c for c in entry.children if patient.entries[c].kind == VOID and not patient.entries[c].voided]
            notes.append("voided by " + ", ".join(patient.ref(v) for v in voids))
        corrections = [c for c in entry.children if patient.entries[c].kind == CORRECTION]
        if corrections:
            notes.append("corrected by " + ", ".join(
                patient.ref(v) + (" (voided)" if patient.entries[v].voided else "") for v in corrections
            ))
        row["status"] = "; ".join(notes)


def describe(row: dict[str, Any]) -> str:
    """One line of what an event says, for the human table."""
    data = row["data"]
    if row["kind"] == CORRECTION:
        changes = "; ".join(f"{k}: {show(v['old'])} -> {show(v['new'])}" for k, v in data.items())
        return f"corrects {row['supersedes']}: {changes}"
    if row["kind"] == SIGN:
        return f"{data['meaning']} signature over {data['covers']} (hash {data['stream_hash'][:16]})"
    if row["kind"] == VOID:
        values = ", ".join(f"{k}={show(v)}" for k, v in data.get("voided_values", {}).items()
                           if v not in (None, False, (), [], {}))
        return f"voids {data['voided']} ({data['voided_kind']}{': ' + values if values else ''})"
    return ", ".join(f"{k}={show(v)}" for k, v in data.items() if v not in (None, False, (), [], {}))


def _voided_values(patient: Patient, target: int, before: Any) -> dict[str, Any]:
    """What a void took away: the record as it stood, or the changes of a voided correction."""
    entry = patient.entries[target]
    if entry.kind == CORRECTION:
        return dict(entry.changes)
    return before.as_input() if before is not None else {}
