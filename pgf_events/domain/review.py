"""A patient's review stream: data queries, source data verification and the freeze.

Monitoring facts are events in the same store, kept in a sibling stream of the patient (one
``Review`` aggregate per patient, its id derived from the patient's) rather than on the clinical
stream itself: a monitor's query or verification is not a clinical fact, so it must not shift the
patient's event references, invalidate an investigator's signature (any later *clinical* event
does) or reach the clinical projections and exports. A correction that answers a query is saved
with the ``QueryAnswered`` event in one transaction.

Query ids are ``SUBJECT-Qn`` (n counts the patient's queries from 1). A query is ``open`` until
answered (``answered``) and ``closed`` by a monitor or data manager; ``reopen`` makes it open again.
Automatic queries carry the edit check that raised them (``check``) and are raised once per finding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import attrs
from eventsourcing.domain import Aggregate

from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import parse_text

REVIEW_NAMESPACE = UUID("b2a7c0e4-91d3-4f5a-8c6e-3d2f1a0b9e57")
STATUSES = ("open", "answered", "closed")


def review_id(patient_uuid: UUID) -> UUID:
    return uuid5(REVIEW_NAMESPACE, str(patient_uuid))


def parse_qid(qid: Any) -> tuple[str, int]:
    """``S001-Q3`` -> ("S001", 3)."""
    text = qid.strip().upper() if isinstance(qid, str) else ""
    subject, sep, number = text.rpartition("-Q")
    if not sep or not subject or not number.isdigit() or int(number) < 1:
        raise ValidationError(f"query id {qid!r} must look like S001-Q1")
    return subject, int(number)


@attrs.define
class Query:
    qid: str
    ref: str
    field: str | None
    text: str
    opened_by: str
    opened_at: datetime
    check: str | None = None  # the edit check of an automatic query
    status: str = "open"
    thread: list[dict[str, Any]] = attrs.field(factory=list)  # every message: action, by, at, text, ref
    closed_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


@attrs.define
class Verification:
    ref: str
    stream_version: int  # the patient's stream version when verified: later changes unverify it
    by: str
    at: datetime


class Review(Aggregate):
    """Queries, verifications and the freeze of one patient."""

    class Event(Aggregate.Event):  # see Patient.Event
        pass

    class Started(Event, Aggregate.Created):
        subject: str

    class QueryOpened(Event):
        number: int
        ref: str
        field: str | None
        text: str
        check: str | None
        by: str

        def apply(self, review: Review) -> None:
            qid = f"{review.subject}-Q{self.number}"
            review.queries[qid] = Query(qid=qid, ref=self.ref, field=self.field, text=self.text,
                                        opened_by=self.by, opened_at=self.timestamp, check=self.check)
            review.queries[qid].thread.append(_message("open", self))

    class QueryAnswered(Event):
        qid: str
        text: str
        answer_ref: str | None  # the correction or void that answered it
        by: str

        def apply(self, review: Review) -> None:
            query = review.queries[self.qid]
            query.status = "answered"
            query.thread.append({**_message("answer", self), "ref": self.answer_ref})

    class QueryClosed(Event):
        qid: str
        text: str | None
        by: str

        def apply(self, review: Review) -> None:
            query = review.queries[self.qid]
            query.status, query.closed_at = "closed", self.timestamp
            query.thread.append(_message("close", self))

    class QueryReopened(Event):
        qid: str
        text: str
        by: str

        def apply(self, review: Review) -> None:
            query = review.queries[self.qid]
            query.status, query.closed_at = "open", None
            query.thread.append(_message("reopen", self))

    class SourceVerified(Event):
        refs: list[str]
        stream_version: int
        by: str

        def apply(self, review: Review) -> None:
            for ref in self.refs:
                review.verified[ref] = Verification(ref, self.stream_version, self.by, self.timestamp)

    class Frozen(Event):
        reason: str
        by: str

        def apply(self, review: Review) -> None:
            review.frozen = (self.by, self.timestamp, self.reason)

    class Unfrozen(Event):
        reason: str
        by: str

        def apply(self, review: Review) -> None:
            review.frozen = None

    def __init__(self, subject: str):
        self.subject = subject
        self.queries: dict[str, Query] = {}
        self.verified: dict[str, Verification] = {}
        self.frozen: tuple[str, datetime, str] | None = None

    @classmethod
    def start(cls, subject: str, patient_uuid: UUID) -> Review:
        return cls._create(cls.Started, id=review_id(patient_uuid), subject=subject)

    # ------------------------------------------------------------------ commands

    def open_query(self, ref: str, field: str | None, text: str, by: str, check: str | None = None) -> str:
        text = parse_text(text, "text", 1000)
        self.trigger_event(self.QueryOpened, number=len(self.queries) + 1, ref=ref, field=field, text=text,
                           check=check, by=by)
        return f"{self.subject}-Q{len(self.queries)}"

    def answer(self, qid: str, text: str, by: str, answer_ref: str | None = None) -> None:
        query = self.query(qid)
        if query.status == "closed":
            raise RuleViolation(f"query {qid} is closed; reopen it before answering")
        self.trigger_event(self.QueryAnswered, qid=qid, text=parse_text(text, "text", 1000),
                           answer_ref=answer_ref, by=by)

    def close(self, qid: str, text: str | None, by: str) -> None:
        query = self.query(qid)
        if query.status == "closed":
            raise RuleViolation(f"query {qid} is already closed")
        self.trigger_event(self.QueryClosed, qid=qid, text=parse_text(text, "text", 1000) if text else None, by=by)

    def reopen(self, qid: str, text: str, by: str) -> None:
        query = self.query(qid)
        if query.status != "closed":
            raise RuleViolation(f"query {qid} is {query.status}, not closed; only a closed query can be reopened")
        self.trigger_event(self.QueryReopened, qid=qid, text=parse_text(text, "text", 1000), by=by)

    def verify(self, refs: list[str], stream_version: int, by: str) -> None:
        self.trigger_event(self.SourceVerified, refs=list(refs), stream_version=stream_version, by=by)

    def freeze(self, reason: str, by: str) -> None:
        reason = parse_text(reason, "reason", 500)
        if self.frozen is not None:
            raise RuleViolation(f"patient {self.subject} is already frozen ({self.frozen_note()})")
        self.trigger_event(self.Frozen, reason=reason, by=by)

    def unfreeze(self, reason: str, by: str) -> None:
        reason = parse_text(reason, "reason", 500)
        if self.frozen is None:
            raise RuleViolation(f"patient {self.subject} is not frozen")
        self.trigger_event(self.Unfrozen, reason=reason, by=by)

    # ------------------------------------------------------------------ reading

    def query(self, qid: str) -> Query:
        subject, _ = parse_qid(qid)
        query = self.queries.get(qid.strip().upper())
        if query is None or subject != self.subject:
            raise ValidationError(f"there is no query {qid.strip().upper()}")
        return query

    def frozen_note(self) -> str:
        assert self.frozen is not None
        by, at, reason = self.frozen
        return f"frozen by {by} on {at:%Y-%m-%d %H:%M}Z: {reason}"


def _message(action: str, event: Any) -> dict[str, Any]:
    return {"action": action, "by": event.by, "at": event.timestamp, "text": getattr(event, "text", None)}
