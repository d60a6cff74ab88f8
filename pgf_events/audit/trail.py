"""The audit trail: one row per stored event, every field an inspector asks for (``pgf export audit-trail``).

Rows come from :func:`pgf_events.projections.history.history_rows`, so the CSV says exactly what
``pgf history`` shows: a correction carries each field's old and new value, a void what it voided,
a signature what it covers. Nothing is filtered: voided and corrected records stay, marked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from defusedcsv import csv  # a cell that looks like a formula (= + - @ | %) gets a leading '

from pgf_events.audit.source import patient_streams, utc
from pgf_events.projections.history import _show, describe, history_rows

COLUMNS = (
    "ref", "subject", "site", "type", "kind", "clinical_date", "recorded_utc", "user", "source", "reason",
    "supersedes", "old_to_new", "what", "status",
)


def trail_rows(app: Any, as_of: datetime | None = None) -> Iterator[dict[str, Any]]:
    for subject, events in patient_streams(app, as_of):
        site = events[0].record.site
        for row in history_rows(events):
            if row["kind"] == "register":
                site = row["data"]["site"]
            elif row["kind"] == "correct" and row.get("corrects") == f"{subject}#1" and "site" in row["data"]:
                site = row["data"]["site"]["new"]
            old_to_new = ""
            if row["kind"] == "correct":
                old_to_new = "; ".join(
                    f"{field}: {_show(v['old'])} -> {_show(v['new'])}" for field, v in row["data"].items()
                )
            yield {
                "ref": row["ref"], "subject": subject, "site": site, "type": row["type"], "kind": row["kind"],
                "clinical_date": row["clinical_date"].isoformat() if row["clinical_date"] else "",
                "recorded_utc": utc(row["recorded_at"]), "user": row["recorded_by"], "source": row["source"] or "",
                "reason": row["reason"] or "", "supersedes": row["supersedes"] or "", "old_to_new": old_to_new,
                "what": describe(row), "status": row["status"],
            }


def write_trail(app: Any, out: IO[str], as_of: datetime | None = None) -> int:
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    from pgf_events.audit.trail_monitoring import monitoring_trail_rows  # noqa: PLC0415

    for row in (*trail_rows(app, as_of), *monitoring_trail_rows(app, as_of)):
        writer.writerow(row)
        count += 1
    return count
