"""The worklist's read model: what ``pgf due`` needs of each patient, kept per patient and caught up
from the notification log, so the web worklist does not fold every stream on each look.

Table ``pgf_view_worklist`` (:data:`.tables.worklist_rows`), two kinds of row per subject:

- ``patient``: the patient's :class:`~.worklist.WorklistInputs` (enrolment, infusions, death and
  withdrawal, which labs were complete, serious AEs with their recorded times, whether a valid
  signature covers the casebook): everything the items need but the day; and, under ``recorded``,
  when the stream's events were recorded (:func:`recorded_span`: time travel reads the rows of the
  patients whose stream was whole by then instead of folding them, :mod:`.travel`);
- ``queries``: the open data queries of the patient's review stream (``qid``, ``ref``, ``text``,
  ``opened_at``).

Each row also keeps the stream version it reflects and the notification id (``position``) of that
version. Catch-up is the projections' protocol (:mod:`.store`, :mod:`.query_feed`): the tracking row
``worklist`` in ``pgf_projection_tracking`` is moved conditionally on its old position in the
transaction that writes the rows, so concurrent readers apply each notification once; a batch
folds each stream it touches from its first event to the batch's last one; far behind (a first
read, a rebuild) the log is read stream by stream (:mod:`.replay`) and written in one transaction.
A row is a pure function of its stream's prefix, so a rebuild gives the same rows as the live
catch-up (tested). The digest covers the protocol and this code: a change rebuilds the rows.

Reading (:meth:`WorklistModel.items`) keeps the rows in memory and re-reads only those past the last
position seen (as :mod:`.snapshot` does for the projections), and keeps each patient's day-dependent
items (doses, labs, signature) for the day and row version they were computed for; SAE clocks and
query ages, which move with the time of day, are computed on each read.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
from collections.abc import Collection, Iterable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from pgf_events.projections import replay, worklist
from pgf_events.projections.derive import fold
from pgf_events.projections.per_store import PerStore
from pgf_events.projections.query_feed import TOPICS as QUERY_TOPICS
from pgf_events.projections.signatures import signatures
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.tables import Conflict, tracking, worklist_metadata, worklist_rows
from pgf_events.projections.worklist import WorklistInputs, items_of
from pgf_events.topics import PATIENT_TOPIC_PREFIX

NAME = "worklist"
BATCH = 500
MAX_RETRIES = 50
_QUERY_TOPICS = frozenset(QUERY_TOPICS)


def model_digest(params: Any) -> str:
    """What the rows depend on besides the log: the protocol and the code that computes them."""
    import sys  # noqa: PLC0415

    code = inspect.getsource(worklist) + inspect.getsource(sys.modules[__name__])
    return hashlib.sha256(json.dumps([params.digest, code]).encode()).hexdigest()[:16]


def patient_row(events: list[Any], position: int) -> dict[str, Any]:
    """The ``patient`` row of a stream's events (versions 1..n, in order)."""
    patient, recorded = fold(events)
    assert patient is not None
    signed = any(s["valid"] for s in signatures(events))
    doc = WorklistInputs.of(patient, recorded, signed).as_json()
    doc["recorded"] = recorded_span(events)
    return {"subject": patient.subject, "kind": "patient", "data": doc, "version": patient.version,
            "position": position}


def recorded_span(events: list[Any]) -> dict[str, str]:
    """When the stream's events were recorded: the stream id, the first event's time and the latest time
    of any event (time travel, :mod:`.travel`: a stream is unknown as of a time before ``first``, and
    whole as of ``last`` or later). ``last`` is a maximum: a writer that waited for the lock may hold an
    earlier time than the event before it."""
    return {"stream": str(events[0].originator_id), "first": events[0].timestamp.isoformat(),
            "last": max(e.timestamp for e in events).isoformat()}


def queries_row(events: Iterable[Any], position: int) -> dict[str, Any]:
    """The ``queries`` row of a review stream's events (versions 1..n, in order)."""
    review: Any = None
    for event in events:
        review = event.mutate(review)
    doc = {"subject": review.subject,
           "queries": [{**q, "opened_at": q["opened_at"].isoformat()} for q in worklist.open_queries(review)]}
    return {"subject": review.subject, "kind": "queries", "data": doc, "version": review.version,
            "position": position}


class WorklistModel:
    """The worklist read model of one :class:`ProjectionStore`'s log (one per store: :func:`model_of`)."""

    def __init__(self, store: ProjectionStore):
        self.store = store
        self.app = store.app
        self.params = store.params
        self.digest = model_digest(self.params)
        self._ready: bool | None = None
        self._lock = threading.RLock()
        self._rows: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}  # (key, kind) -> (version, data)
        self._seen: tuple[int, int, int] | None = None  # (count, sum of versions, max position)
        self._inputs: dict[str, tuple[int, WorklistInputs]] = {}  # key -> (version, inputs)
        self._queries: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._days: dict[str, tuple[int, date, list[dict[str, Any]]]] = {}  # key -> (version, day, day items)
        self.full_reads = 0

    # ------------------------------------------------------------------ setting up

    def available(self) -> bool:
        """Whether the table can be used (it is made on first use; a login that may not create it, or a
        read-only copy without it, reads the worklist from the streams instead)."""
        if self._ready is None:
            self._ready = self._setup()
        return self._ready

    def _setup(self) -> bool:
        if self.app.store.read_only:
            return False
        try:
            self.store.setup()
            worklist_metadata.create_all(self.store.engine)
            with self.store._write() as conn:  # noqa: SLF001 - a write transaction of that store
                if conn.execute(sa.select(tracking.c.name).where(tracking.c.name == NAME)).first() is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(sa.insert(tracking).values(name=NAME, position=0, digest=self.digest,
                                                                    protocol_version=self.params.version))
                    except IntegrityError:
                        pass  # another process made it first
        except DBAPIError:
            return False
        return True

    def _tracking(self) -> tuple[int, str]:
        with self.store._read() as conn:  # noqa: SLF001
            row = conn.execute(sa.select(tracking.c.position, tracking.c.digest).where(tracking.c.name == NAME)).one()
        return int(row.position), str(row.digest)

    def position(self) -> int:
        return self._tracking()[0]

    # ------------------------------------------------------------------ catching up

    def catch_up(self) -> int:
        """Apply every notification not yet applied; returns how many rows this call wrote."""
        if not self.available():
            raise RuntimeError("the worklist read model is not available on this store")
        written = conflicts = 0
        last_start = -1
        while True:
            start, digest = self._tracking()
            if start != last_start:
                conflicts, last_start = 0, start
            try:
                if digest != self.digest:
                    self._reset(start, digest)
                    continue
                head = self.app.recorder.max_notification_id() or 0
                if start >= head:
                    return written
                if head - start > 2 * BATCH:
                    written += self._replay(start, head)
                    continue
                batch = self.app.recorder.select_notifications(start=start + 1, limit=BATCH, stop=head)
                written += self._apply(start, batch[-1].id if batch else head, batch)
            except Conflict:
                conflicts += 1
                if conflicts > MAX_RETRIES:
                    raise RuntimeError("the worklist read model kept conflicting with other processes") from None

    def rebuild(self) -> int:
        """Drop the rows and replay the log from zero; returns how many rows were written."""
        if not self.available():
            raise RuntimeError("the worklist read model is not available on this store")
        for _ in range(MAX_RETRIES):
            start, digest = self._tracking()
            try:
                self._reset(start, digest)
                break
            except Conflict:
                continue
        return self.catch_up()

    def _apply(self, start: int, stop: int, batch: list[Any]) -> int:
        patients: dict[UUID, tuple[int, int]] = {}
        reviews: dict[UUID, tuple[int, int]] = {}
        for n in batch:
            if n.topic.startswith(PATIENT_TOPIC_PREFIX):
                patients[n.originator_id] = (n.originator_version, n.id)
            elif n.topic in _QUERY_TOPICS:
                reviews[n.originator_id] = (n.originator_version, n.id)
        events = self.app.events
        rows = [patient_row(list(events.get(pid, lte=version)), position)
                for pid, (version, position) in patients.items()]
        rows += [queries_row(events.get(oid, lte=version), position) for oid, (version, position) in reviews.items()]
        return self._commit(start, stop, rows)

    def _replay(self, start: int, stop: int) -> int:
        rows = [patient_row(events, head.position)
                for chunk in replay.chunks(replay.stream_heads(self.app, start, stop))
                for head, events in replay.iter_patient_streams(self.app, chunk)]
        reviews: dict[UUID, tuple[int, int]] = {}
        after = start
        while True:
            batch = self.app.recorder.select_notifications(start=after + 1, limit=BATCH, stop=stop,
                                                           topics=QUERY_TOPICS)
            for n in batch:
                reviews[n.originator_id] = (n.originator_version, n.id)
            if len(batch) < BATCH:
                break
            after = batch[-1].id
        rows += [queries_row(self.app.events.get(oid, lte=version), position)
                 for oid, (version, position) in reviews.items()]
        return self._commit(start, stop, rows)

    def _commit(self, start: int, stop: int, rows: list[dict[str, Any]]) -> int:
        codec = self.store.codec
        sealed = [{**r, "subject": codec.key(r["subject"]), "data": codec.seal(r["data"])} for r in rows]
        with self.store._write() as conn:  # noqa: SLF001
            claimed = conn.execute(sa.update(tracking).where(tracking.c.name == NAME, tracking.c.position == start,
                                                             tracking.c.digest == self.digest)
                                   .values(position=stop))
            if claimed.rowcount != 1:
                raise Conflict(NAME)
            for kind in ("patient", "queries"):
                keys = [r["subject"] for r in sealed if r["kind"] == kind]
                for i in range(0, len(keys), 500):
                    conn.execute(sa.delete(worklist_rows).where(worklist_rows.c.kind == kind,
                                                                worklist_rows.c.subject.in_(keys[i:i + 500])))
            if sealed:
                conn.execute(sa.insert(worklist_rows), sealed)
        return len(rows)

    def _reset(self, start: int, digest: str) -> None:
        with self.store._write() as conn:  # noqa: SLF001
            claimed = conn.execute(sa.update(tracking).where(tracking.c.name == NAME, tracking.c.position == start,
                                                             tracking.c.digest == digest)
                                   .values(position=0, digest=self.digest, protocol_version=self.params.version))
            if claimed.rowcount != 1:
                raise Conflict(NAME)
            conn.execute(sa.delete(worklist_rows))

    # ------------------------------------------------------------------ reading

    def rows(self) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
        """Every row, by (subject key, kind): (version, data), re-reading only rows past the last position seen."""
        with self._lock, self.store._read() as conn:  # noqa: SLF001
            t = worklist_rows
            shape = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.version), 0),
                              sa.func.coalesce(sa.func.max(t.c.position), 0))
            seen = tuple(int(v) for v in conn.execute(shape).one())
            mine: dict[tuple[str, str], tuple[int, dict[str, Any]]] | None = self._rows
            if self._seen is None:
                mine = None
            elif seen != self._seen:
                assert mine is not None
                fresh = sa.select(t.c.subject, t.c.kind, t.c.version, t.c.data).where(t.c.position > self._seen[2])
                for r in conn.execute(fresh):
                    mine[(r.subject, r.kind)] = (r.version, self.store.codec.open(r.data))
                if (len(mine), sum(v for v, _ in mine.values())) != seen[:2]:
                    mine = None  # rows went away or were rewritten at older positions: read it all
            if mine is None:
                self.full_reads += 1
                mine = {(r.subject, r.kind): (r.version, self.store.codec.open(r.data))
                        for r in conn.execute(sa.select(t.c.subject, t.c.kind, t.c.version, t.c.data))}
                self._inputs.clear()
                self._queries.clear()
                self._days.clear()
            self._rows, self._seen = mine, (seen[0], seen[1], seen[2])
            return mine

    def items(self, on: date, at: datetime, subjects: Collection[str] | None = None) -> list[dict[str, Any]]:
        """``pgf due`` (unsorted) for every patient (or those of ``subjects``), planned for ``on`` at ``at``."""
        with self._lock:
            rows = self.rows()
            out: list[dict[str, Any]] = []
            for (key, kind), (version, data) in rows.items():
                if kind != "patient":
                    continue
                inputs = self._parsed(key, version, data)
                if subjects is not None and inputs.subject not in subjects:
                    continue
                queries = self._open_queries(key, rows.get((key, "queries")))
                day = self._days.get(key)
                if day is None or day[0] != version or day[1] != on:
                    day = self._days[key] = (version, on, worklist.day_items(inputs, self.params, on))
                out += items_of(inputs, queries, self.params, on, at, on_day=[dict(i) for i in day[2]])
            return out

    def inputs_of(self, key: str, version: int, data: dict[str, Any]) -> WorklistInputs:
        """The :class:`WorklistInputs` of a row of :meth:`rows` (parsed once per row version)."""
        with self._lock:
            return self._parsed(key, version, data)

    def open_queries_now(self) -> dict[str, list[dict[str, Any]]]:
        """Every patient's open queries, by subject (patients without any left out)."""
        with self._lock:
            return {row[1]["subject"]: list(found) for (key, kind), row in self.rows().items()
                    if kind == "queries" and (found := self._open_queries(key, row))}

    def _parsed(self, key: str, version: int, data: dict[str, Any]) -> WorklistInputs:
        found = self._inputs.get(key)
        if found is None or found[0] != version:
            found = self._inputs[key] = (version, WorklistInputs.from_json(data))
        return found[1]

    def _open_queries(self, key: str, row: tuple[int, dict[str, Any]] | None) -> list[dict[str, Any]]:
        if row is None:
            return []
        found = self._queries.get(key)
        if found is None or found[0] != row[0]:
            found = self._queries[key] = (row[0], [{**q, "opened_at": datetime.fromisoformat(q["opened_at"])}
                                                   for q in row[1]["queries"]])
        return found[1]


model_of: PerStore[WorklistModel] = PerStore(WorklistModel)  # the one worklist model of a store in this process
