"""The audit trail (``pgf export audit-trail``): one CSV row per changed field of every stored event.

A record writes one row per field it gives (old value empty); a correction one row per field it
changes (old and new); a void one row per field of the record it takes away (the value standing
before and after: empty for a voided record, the earlier value for a voided correction); a
signature one row naming what it covers. Each row has the user, the role(s) they held when the event
was recorded (empty in an open store), the patient's site, the reason, the source, the clinical date
and the recorded UTC time. Nothing is filtered. Cells that a spreadsheet would read as a formula
(``= + - @`` ...) are written with a leading ``'`` (defusedcsv), so the file is safe to open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import IO, Any

from defusedcsv import csv

from pgf_events.audit.odm_meta import decimal_text
from pgf_events.audit.roles import RoleBook
from pgf_events.audit.source import patient_streams, utc
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.patient import CORRECTION, SIGN, VOID
from pgf_events.projections.history import describe, history_rows

COLUMNS = (
    "ref", "subject", "site", "type", "kind", "record", "field", "old_value", "new_value", "clinical_date",
    "recorded_utc", "user", "role", "reason", "source", "supersedes", "what", "status", "deviation",
)


def fields(record: Any) -> dict[str, Any]:
    """A record's values by field name; dict fields become ``name.KEY``, lists are comma-joined."""
    if record is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in record.as_input().items():
        if isinstance(value, Mapping):
            out.update({f"{name}.{key}": item for key, item in value.items()})
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(map(str, value)) or None
        else:
            out[name] = value
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return decimal_text(value)
    return str(value)


def trail_rows(app: Any, as_of: datetime | None = None, subjects: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every patient's rows (or only ``subjects``'), in registration order, as the log was ``as_of``."""
    book = RoleBook(app, as_of)
    for subject, events in patient_streams(app, as_of, subjects):
        patient = None
        shown = {row["ref"]: row for row in history_rows(events)}
        for event in events:
            kind = EVENT_KINDS[type(event)]
            root, before = None, {}
            if kind in (CORRECTION, VOID):
                assert patient is not None
                root = patient._root(int(event.supersedes.rpartition("#")[2]))
                entry = patient.entries[root]
                before = {} if entry.voided else fields(entry.record)
            patient = event.mutate(patient)
            ref = patient.ref(event.originator_version)
            base = {
                "ref": ref, "subject": subject, "site": patient.registration.site, "type": type(event).__name__,
                "kind": kind, "record": patient.ref(root) if root else ref,
                "clinical_date": _text(getattr(event, "record", None) and event.record.clinical_date
                                       if kind not in (CORRECTION, VOID, SIGN) else
                                       patient.entries[root].record.clinical_date if root else None),
                "recorded_utc": utc(event.timestamp), "user": event.recorded_by,
                "role": "+".join(sorted(book.roles_at(event.recorded_by, event.timestamp))),
                "reason": getattr(event, "reason", None) or "", "source": event.source or "",
                "supersedes": getattr(event, "supersedes", None) or "",
                "what": describe(shown[ref]), "status": shown[ref]["status"],
                "deviation": getattr(event, "deviation", None) or "",  # a protocol deviation's acknowledgement
            }
            if kind == SIGN:
                yield {**base, "field": "signature", "old_value": "",
                       "new_value": f"{event.meaning} of {subject}#1..#{event.stream_version} "
                                    f"(chain hash {event.stream_hash}) at {utc(event.signed_at)}"
                                    + (f", key {event.key_id}" if getattr(event, "key_id", None) else "")}
                continue
            if root is None:
                changes = {name: (None, value) for name, value in fields(event.record).items() if value is not None}
            else:
                entry = patient.entries[root]
                after = {} if entry.voided else fields(entry.record)
                changes = {name: (before.get(name), after.get(name)) for name in {**before, **after}
                           if before.get(name) != after.get(name)}
            if not changes:  # e.g. a change to a record that stays voided: the event still has its row
                yield {**base, "field": "", "old_value": "", "new_value": ""}
            for name, (old, new) in changes.items():
                yield {**base, "field": name, "old_value": _text(old), "new_value": _text(new)}


def write_trail(app: Any, out: IO[str], as_of: datetime | None = None) -> int:
    """Write the CSV; returns the number of events (rows are one per changed field)."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    refs = set()
    from pgf_events.audit.trail_monitoring import monitoring_trail_rows  # noqa: PLC0415

    for row in (*trail_rows(app, as_of), *monitoring_trail_rows(app, as_of)):
        writer.writerow(row)
        refs.add(row["ref"])
    return len(refs)
