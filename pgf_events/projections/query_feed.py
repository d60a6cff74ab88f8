"""The ``queries`` projection of the change feed: every query action, once, in log order (issue 15).

The patient projections (:mod:`.store`) follow the clinical streams; data queries live on each
patient's review stream (:mod:`pgf_events.domain.review`). This projection follows those: one change
row in ``pgf_changes`` per ``QueryOpened``, ``QueryAnswered``, ``QueryClosed`` and ``QueryReopened``
event, at that event's notification id, so a downstream service (``pgf follow --projection queries``,
``GET /changes?projection=queries``) sees each query opened, answered, closed and reopened exactly
once and in order. ``kind`` is ``insert`` for the opening, ``update`` after; ``data`` is the query as it
stands after the action (``qid``, ``subject``, ``action``, ``status``, ``ref``, ``field``, ``check``,
``text`` (the action's), ``by``, ``at``, ``opened_by``, ``opened_at``, ``answer_ref``); ``event_ref``
is the query id.

Catch-up is the patient projections' protocol: the tracking row ``queries`` in
``pgf_projection_tracking`` is moved conditionally on its old position in the transaction that
writes the change rows, so concurrent followers apply each event once. In an encrypted store rows are
sealed with the read models' codec.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pgf_events.domain.review import Review
from pgf_events.formatting import iso
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.tables import Conflict, changes, tracking
from pgf_events.topics import topic_of

NAME = "queries"
FEED_PROJECTIONS: tuple[str, ...] = (*PROJECTIONS, NAME)  # what the change feed carries, in position order
ACTIONS = {Review.QueryOpened: "opened", Review.QueryAnswered: "answered", Review.QueryClosed: "closed",
           Review.QueryReopened: "reopened"}
TOPICS = [topic_of(cls) for cls in ACTIONS]
DIGEST = "queries-1"  # the shape of the rows: a new one rebuilds nothing (rows are per event), it names them
BATCH = 500
MAX_RETRIES = 50


class QueryFeed:
    """The ``queries`` projection of one :class:`~pgf_events.projections.store.ProjectionStore`'s log."""

    def __init__(self, store: Any):
        self.store = store
        self.app = store.app
        self._ready = False
        self._reviews: dict[UUID, Any] = {}  # review stream -> its Review folded to its last applied event

    def setup(self) -> None:
        if self._ready:
            return
        self.store.setup()
        with self.store._write() as conn:
            if conn.execute(sa.select(tracking.c.name).where(tracking.c.name == NAME)).first() is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(tracking).values(name=NAME, position=0, digest=DIGEST,
                                                                protocol_version="-"))
                except IntegrityError:
                    pass  # another process made it first
        self._ready = True

    def position(self) -> int:
        self.setup()
        with self.store._read() as conn:
            return int(conn.execute(sa.select(tracking.c.position).where(tracking.c.name == NAME)).scalar_one())

    def catch_up(self) -> int:
        """Write a change for every query action after the tracked position; returns how many."""
        self.setup()
        written = conflicts = 0
        last_start = -1
        while True:
            start, head = self.position(), self.app.recorder.max_notification_id() or 0
            if start != last_start:  # the position moved (here or elsewhere): not a livelock
                conflicts, last_start = 0, start
            if start >= head:
                return written
            batch = self.app.recorder.select_notifications(start=start + 1, limit=BATCH, stop=head, topics=TOPICS)
            stop = batch[-1].id if len(batch) == BATCH else head
            try:
                written += self._commit(start, stop, [self._row(n) for n in batch])
            except Conflict:
                self._reviews.clear()
                conflicts += 1
                if conflicts > MAX_RETRIES:
                    raise RuntimeError("the queries projection kept conflicting with other processes") from None

    def _commit(self, start: int, stop: int, rows: list[dict[str, Any]]) -> int:
        with self.store._write() as conn:
            claimed = conn.execute(sa.update(tracking).where(tracking.c.name == NAME, tracking.c.position == start)
                                   .values(position=stop))
            if claimed.rowcount != 1:
                raise Conflict(NAME)
            if rows:
                conn.execute(sa.insert(changes), rows)
        return len(rows)

    def _row(self, notification: Any) -> dict[str, Any]:
        event = self.app.mapper.to_domain_event(notification)
        review = self._fold(event)
        query = review.queries[event.qid if hasattr(event, "qid") else f"{review.subject}-Q{event.number}"]
        last = query.thread[-1]
        action = ACTIONS[type(event)]
        data = {
            "subject": review.subject, "qid": query.qid, "action": action, "status": query.status,
            "ref": query.ref, "field": query.field, "check": query.check, "text": last.get("text"),
            "by": last.get("by"), "at": iso(event.timestamp), "opened_by": query.opened_by,
            "opened_at": iso(query.opened_at), "answer_ref": last.get("ref") if action == "answered" else None,
        }
        codec = self.store.codec
        return {
            "position": notification.id, "projection": NAME, "subject": codec.key(review.subject),
            "kind": "insert" if action == "opened" and len(query.thread) == 1 else "update",
            "data": codec.seal(data),
            "event_ref": query.qid if codec.cipher is None else codec.seal(query.qid)["sealed"],
            "recorded_at": iso(event.timestamp),
        }

    def _fold(self, event: Any) -> Any:
        """The review stream folded up to ``event`` (from the cache, reading only what it lacks)."""
        oid, version = event.originator_id, event.originator_version
        review = self._reviews.get(oid)
        have = review.version if review is not None else 0
        if have >= version:
            review, have = None, 0
        for earlier in self.app.events.get(oid, gt=have, lte=version - 1) if version - 1 > have else ():
            review = earlier.mutate(review)
        review = event.mutate(review)
        self._reviews[oid] = review
        return review
