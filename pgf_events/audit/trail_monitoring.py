"""The monitoring part of the audit trail: queries, source data verification, freezes and the
database lock, one row each, in the audit trail's columns (:data:`pgf_events.audit.trail.COLUMNS`).

Queries, verifications and freezes live on each patient's review stream; the lock on the store's
lock aggregate (``subject`` empty). ``kind`` is ``monitoring`` for all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pgf_events.audit.source import utc
from pgf_events.domain.lock import LOCK_ID, StoreLock
from pgf_events.projections.review import review_events, review_rows


def monitoring_trail_rows(app: Any, as_of: datetime | None = None,
                          subjects: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every patient's monitoring rows and then the lock's; with ``subjects``, only those patients' (no
    lock rows: they are of no patient)."""
    for subject in app.subjects() if subjects is None else subjects:
        site = app.patient(subject).registration.site
        for row in review_rows(review_events(app, subject), as_of):
            yield _row(row["ref"], subject, site, row["type"], row["recorded_at"], row["recorded_by"],
                       row["reason"], row["about"], row["what"])
    if subjects is not None:
        return
    for event in app.events.get(LOCK_ID):
        if as_of is not None and event.timestamp > as_of:
            break
        if isinstance(event, StoreLock.Locked):
            yield _row("lock", "", "", "Locked", event.timestamp, event.by, event.reason, None,
                       f"database locked; signed checkpoint {event.checkpoint}")
        elif isinstance(event, StoreLock.Unlocked):
            yield _row("lock", "", "", "Unlocked", event.timestamp, event.by, event.reason, None, "database unlocked")


def _row(ref: str, subject: str, site: str, type_: str, at: datetime, by: str, reason: str | None,
         about: str | None, what: str) -> dict[str, Any]:
    return {"ref": ref, "subject": subject, "site": site, "type": type_, "kind": "monitoring", "record": "",
            "field": "", "old_value": "", "new_value": "", "clinical_date": "", "recorded_utc": utc(at), "user": by,
            "role": "", "reason": reason or "", "source": "", "supersedes": about or "", "what": what, "status": ""}
