"""A patient's monitoring history (queries, verifications, freezes), for ``pgf history`` and exports.

Read from the patient's review stream (:mod:`pgf_events.domain.review`); one row per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pgf_events.domain.review import Review


def review_rows(events: Iterable[Any], as_of: datetime | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    subject = ""
    numbers = 0
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        if isinstance(event, Review.Started):
            subject = event.subject
            continue
        row: dict[str, Any] = {"type": type(event).__name__, "recorded_at": event.timestamp, "recorded_by": event.by,
                               "reason": getattr(event, "reason", None)}
        if isinstance(event, Review.QueryOpened):
            numbers += 1
            qid = f"{subject}-Q{numbers}"
            what = f"query on {event.ref}{'.' + event.field if event.field else ''}: {event.text}"
            row.update(ref=qid, about=event.ref, what=what + (f" (edit check {event.check})" if event.check else ""))
        elif isinstance(event, Review.QueryAnswered):
            row.update(ref=event.qid, what=f"answered: {event.text}" + (f" ({event.answer_ref})" if event.answer_ref else ""),
                       about=event.answer_ref)
        elif isinstance(event, (Review.QueryClosed, Review.QueryReopened)):
            verb = "closed" if isinstance(event, Review.QueryClosed) else "reopened"
            row.update(ref=event.qid, what=verb + (f": {event.text}" if event.text else ""), about=None)
        elif isinstance(event, Review.SourceVerified):
            row.update(ref=subject, what="source verified: " + ", ".join(event.refs), about=None, refs=list(event.refs))
        elif isinstance(event, Review.Frozen):
            row.update(ref=subject, what="frozen", about=None)
        elif isinstance(event, Review.Unfrozen):
            row.update(ref=subject, what="unfrozen", about=None)
        else:  # pragma: no cover - every Review event is listed above
            raise TypeError(f"unknown review event {type(event).__name__}")
        rows.append(row)
    return rows


def review_events(app: Any, subject: str) -> list[Any]:
    from pgf_events.domain.review import review_id  # noqa: PLC0415

    return list(app.events.get(review_id(app.patient_id(subject))))
