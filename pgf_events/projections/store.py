"""Read models as SQL tables (defined in :mod:`.tables`) in the same database as the events, caught up from the notification log.

Tables (SQLAlchemy Core, created on first use):
- ``pgf_view_<name>`` for each projection in :data:`PROJECTIONS`: one row per subject with
  ``data`` (the projection's JSON slice of the patient's derived state), ``protocol_version``,
  ``refs`` (every event reference the slice names), ``version`` (the stream version it reflects)
  and ``position`` (the notification id of that version);
- ``pgf_projection_tracking(name PK, position, digest, protocol_version)``: ``digest`` covers the
  protocol parameters and the derivation code (:func:`.version.derivation_digest`);
- ``pgf_changes(position, projection, subject, kind, data, event_ref, recorded_at)`` with
  PK(position, projection, subject): a row whenever a subject's slice actually changes (``kind``
  insert|update), the groundwork of the downstream change feed.

Catch-up reads the notifications after the tracked position in batches, folds each affected
patient to the last version seen in the batch, derives once, and writes rows, changes and the
new position in ONE transaction. The position update is conditional on the old one
(``UPDATE ... WHERE name=? AND position=?``): if another process got there first the transaction
rolls back and the batch is retried from the new position, so every notification is applied
exactly once. On SQLite writers take the lock up front (``BEGIN IMMEDIATE``). A projection
computed under another protocol (or by other derivation code: a hash of its source,
:mod:`.version`) is rebuilt from zero automatically.

Batches hold :data:`BATCH_SIZE` notifications. Far behind (more than two batches: a rebuild, a
first read, a big import) the log is replayed stream by stream instead (:mod:`.replay`): each
affected patient is folded and derived once, in chunks committed in the order of the streams' last
events, so time is linear in the events and memory bounded. Hence a change row describes a
subject's state at the *end* of a batch: a catch-up after every command lists every intermediate
state, a replay only each subject's state at its end. A rebuild deletes that projection's change
rows and writes them anew (positions are reused).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from pgf_events.application import TrialConduct
from pgf_events.domain.patient import Patient
from pgf_events.formatting import iso
from pgf_events.gc_tuning import fewer_collections
from pgf_events.projections import replay
from pgf_events.projections.derive import derive_patient
from pgf_events.projections.folds import FoldCache
from pgf_events.projections.slices import PROJECTIONS, SLICE_KEYS, all_slices, collect_refs
from pgf_events.projections.store_reading import StoreReading
from pgf_events.projections.stream_models import StreamModel
from pgf_events.projections.tables import (
    Codec,
    Conflict,
    changes,
    empty_views,
    engine_of,
    insert_many,
    json_text,
    metadata,
    model_table,
    refs_in_text,
    tracking,
    views,
    write_model_rows,
)
from pgf_events.projections.version import derivation_digest
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX

BATCH_SIZE = 500
MAX_RETRIES = 50


def projection_digest(params: Protocol) -> str:
    """What the stored rows depend on besides the log: the protocol, the derivation code, the row shape."""
    canonical = json.dumps([params.digest, derivation_digest(), SLICE_KEYS], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ProjectionStore(StoreReading):
    """The projections of one application's event log, in that log's database."""

    def __init__(self, app: TrialConduct, *, batch_size: int = BATCH_SIZE,
                 notify: Callable[[str], None] | None = None):
        self.app = app
        self.params = app.protocol
        self.digest = projection_digest(app.protocol)
        self.batch_size = batch_size
        self.notify = notify or (lambda message: None)
        self.engine = engine_of(app)
        self._ready = False
        self.codec = Codec(app)
        shared = getattr(app, "projection_folds", None)  # a long-running process's, kept between commands
        self._cache: FoldCache = shared if isinstance(shared, FoldCache) else FoldCache()
        # (projection, subject) -> the data this process last wrote; valid while no Conflict occurs,
        # because every write is guarded by the tracking position this process last set.
        self._written: dict[tuple[str, str], Any] = {}
        # The digest each stream model's tracking row must carry (:mod:`.model_store` adds them).
        self.model_digests: dict[str, str] = {}
        self.model_rows_written: dict[str, int] = {}

    def close(self) -> None:
        if self.app.store.backend != "memory":
            self.engine.dispose()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(pgf_read=True) as conn, conn.begin():
            yield conn

    def setup(self) -> None:
        """Create the tables and the tracking rows if missing (safe against concurrent creators)."""
        if self._ready or self.app.store.read_only:  # a read-only copy is read as it is
            return
        for attempt in range(5):
            try:
                metadata.create_all(self.engine)
                with self._write() as conn:
                    have = {r.name for r in conn.execute(sa.select(tracking.c.name))}
                    missing = [n for n in PROJECTIONS if n not in have]
                    if missing:
                        conn.execute(sa.insert(tracking), [
                            {"name": n, "position": 0, "digest": self.digest,
                             "protocol_version": self.params.version} for n in missing
                        ])
                self._ready = True
                return
            except DBAPIError:
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def tracking(self) -> dict[str, dict[str, Any]]:
        self.setup()
        with self._read() as conn:
            return {r.name: dict(r._mapping) for r in conn.execute(sa.select(tracking))}

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    # ------------------------------------------------------------------ catching up

    def catch_up(self, names: Sequence[str] = PROJECTIONS, *, batch_size: int | None = None,
                  models: Sequence[StreamModel] = ()) -> int:
        """Apply every notification not yet applied; returns how many this call applied.

        ``models``: stream models (their tracking rows made, :mod:`.model_store`) that join a replay
        by stream when they stand where the projections do: the one pass writes their rows too.
        Whatever they still lack afterwards is their own catch-up's (:meth:`.model_store.ModelKeeper.catch_up`).
        """
        self.setup()
        self._check_protocol(names)
        applied = conflicts = 0
        last_start = -1
        while True:
            state = self.tracking()
            start = min(state[n]["position"] for n in names)
            if start != last_start:  # someone (this process or another) moved on: not a livelock
                conflicts, last_start = 0, start
            limit = batch_size or self.batch_size
            head = self.head()
            try:
                if batch_size is None and head - start > 2 * limit and len({state[n]["position"] for n in names}) == 1:
                    # Far behind (a rebuild, a first read, a big import): replay stream by stream.
                    riders = [m for m in models if m.name in state and state[m.name]["position"] == start
                              and state[m.name]["digest"] == self.model_digests.get(m.name)]
                    applied += self._replay({n: state[n] for n in [*names, *(m.name for m in riders)]}, head,
                                            riders)
                    conflicts = 0
                    continue
                batch = self.app.recorder.select_notifications(start=start + 1, limit=limit)
                if not batch:
                    return applied
                self._apply(batch, {n: state[n] for n in names})
            except Conflict as e:  # another process applied (part of) this batch first: go on from its position
                applied += e.applied
                self._written.clear()
                conflicts += 1
                if conflicts > MAX_RETRIES:  # only when nobody moved the position in all these tries
                    raise RuntimeError("projection catch-up kept conflicting with other processes") from None
                self._check_protocol(names)
                continue
            conflicts = 0
            applied += len(batch)

    def _apply(self, batch: Sequence[Any], state: dict[str, dict[str, Any]]) -> None:
        new_position = batch[-1].id
        last: dict[UUID, tuple[int, Any]] = {}
        folded: dict[UUID, tuple[Patient, dict[int, datetime]]] = {}
        for notification in batch:
            if not notification.topic.startswith(PATIENT_TOPIC_PREFIX):
                continue  # import batches and the user directory derive nothing; the position still moves
            event = self.app.mapper.to_domain_event(notification)
            folded[event.originator_id] = self._cache.advance(event, self._stream_prefix)
            last[event.originator_id] = (notification.id, event)
        derived: dict[UUID, dict[str, dict[str, Any]]] = {}
        subjects: dict[UUID, str] = {}
        for pid in last:
            patient, recorded = folded[pid]
            derived[pid] = all_slices(derive_patient(patient, self.params, recorded).as_json())
            subjects[pid] = patient.subject
        written = self._commit(state, new_position, last, derived, subjects)
        self._written.update(written)  # only once committed

    def _replay(self, state: dict[str, dict[str, Any]], stop: int, models: Sequence[StreamModel] = ()) -> int:
        """Apply every notification up to ``stop`` stream by stream (see :mod:`replay`); returns how many.

        Chunks of streams go in the order of their last event, and each chunk's transaction moves the
        position to that chunk's last event: every stream ending at or before it is then written, and
        a stream with later events is derived again when those are applied, by this replay or, after
        a crash, by the next catch-up. So a replay can stop anywhere and still be exactly once.
        ``state`` may name stream models (``models``) beside the projections, or only them.
        """
        self._written.clear()  # rows are rewritten without being remembered (memory stays bounded)
        start = min(row["position"] for row in state.values())
        heads = replay.stream_heads(self.app, start, stop)
        committed = [start]
        try:
            with fewer_collections():
                self._replay_chunks(state, stop, heads, committed, models)
        except Conflict as e:
            e.applied = replay.count_between(self.app, start, committed[0])
            raise
        return sum(head.count for head in heads)

    def _replay_chunks(self, state: dict[str, dict[str, Any]], stop: int, heads: list[replay.StreamHead],
                       committed: list[int], models: Sequence[StreamModel]) -> None:
        targets = replay.Targets(projections=any(n in views for n in state), models=tuple(models))
        fresh = {m.name for m in models if state[m.name]["position"] == 0}  # a model's rows start empty at 0
        if starting := [n for n in state if n in views and state[n]["position"] == 0]:
            with self._read() as conn:  # a view the pass starts empty: nothing of it to look up (tables.empty_views)
                fresh |= empty_views(conn, starting)
        for chunk, results in replay.derived_chunks(self.app, self.params, heads, targets):
            patients = [d for d in results if d.slices is not None]
            last = {d.originator_id: (d.position, d) for d in patients}  # d has originator_version, timestamp
            derived = {d.originator_id: d.slices for d in patients}
            subjects = {d.originator_id: d.subject for d in patients}
            rows = {m.name: [(kind, subject, data, d.originator_version, d.position)
                             for d in results for kind, subject, data in d.rows.get(m.name, ())] for m in models}
            new_position = stop if chunk[-1] is heads[-1] else chunk[-1].position
            self._commit(state, new_position, last, derived, subjects, rows, fresh)  # type: ignore[arg-type]
            committed[0] = new_position
            state = {name: {**row, "position": new_position} for name, row in state.items()}
        if all(row["position"] < stop for row in state.values()):  # nothing but non-patient events
            self._commit(state, stop, {}, {}, {})
            committed[0] = stop

    def _commit(self, state: dict[str, dict[str, Any]], new_position: int, last: dict[UUID, tuple[int, Any]],
                derived: dict[UUID, dict[str, dict[str, Any]]], subjects: dict[UUID, str],
                model_rows: dict[str, list[tuple[str, str, Any, int, int]]] | None = None,
                fresh: frozenset[str] | set[str] = frozenset()) -> dict[tuple[str, str], Any]:
        """Move each projection (and stream model) to ``new_position`` and write its rows, in one
        transaction; Conflict if another process moved one first. Returns the data written, by
        (projection, subject). ``model_rows``: each model's rows (kind, subject, data, version,
        position); ``fresh``: models and projections whose table held nothing when the pass began (no row
        to replace or compare with)."""
        todo = [n for n in state if state[n]["position"] < new_position]
        with self._write() as conn:
            for name in todo:  # claim the batch first: a competing writer blocks here, then fails
                claimed = conn.execute(
                    sa.update(tracking)
                    .where(tracking.c.name == name, tracking.c.position == state[name]["position"],
                           tracking.c.digest == self.model_digests.get(name, self.digest))
                    .values(position=new_position)
                )
                if claimed.rowcount != 1:
                    raise Conflict(name)
            written: dict[tuple[str, str], Any] = {}
            for name in todo:
                if name not in views:
                    rows = (model_rows or {}).get(name, [])
                    write_model_rows(conn, model_table(name), self.codec, rows, replace=name not in fresh)
                    self.model_rows_written[name] = self.model_rows_written.get(name, 0) + len(rows)
                    continue
                mine = {pid: last[pid] for pid in last if last[pid][0] > state[name]["position"]}
                self._write_rows(conn, name, mine, derived, subjects, written, empty=name in fresh)
        return written

    def _write_rows(self, conn: Connection, name: str, mine: dict[UUID, tuple[int, Any]],
                    derived: dict[UUID, dict[str, dict[str, Any]]], subjects: dict[UUID, str],
                    written: dict[tuple[str, str], Any], *, empty: bool = False) -> None:
        """``empty``: the table held no row of these subjects (a replay from an empty table)."""
        if not mine:
            return
        view, codec = views[name], self.codec
        mine_subjects = [subjects[pid] for pid in mine]
        existing = {s: self._written[(name, s)] for s in mine_subjects if (name, s) in self._written}
        unknown = {codec.key(s): s for s in mine_subjects if s not in existing}
        if unknown and not empty:
            query = sa.select(view.c.subject, view.c.data).where(view.c.subject.in_(list(unknown)))
            existing.update({unknown[r.subject]: codec.open(r.data) for r in conn.execute(query)})
        inserts: list[tuple[Any, ...]] = []
        changed: list[tuple[Any, ...]] = []
        updates, moves = [], []
        for pid, (position, event) in mine.items():
            subject, data = subjects[pid], derived[pid][name]
            version, key = event.originator_version, codec.key(subject)
            if subject in existing and existing[subject] == data:
                moves.append({"key": key, "version": version, "position": position})  # nothing shown changed
                continue
            if codec.cipher is None:
                sealed = data
                text = json_text(data)  # the row's and its change's data, dumped once
                refs: Any = refs_in_text(text, data)
            else:
                sealed, refs = codec.seal(data), codec.seal(collect_refs(data))
                text = json_text(sealed)
            if subject in existing:
                updates.append({"key": key, "data": sealed, "protocol_version": self.params.version, "refs": refs,
                                "version": version, "position": position})
            else:
                inserts.append((key, text, self.params.version, json_text(refs), version, position))
            ref = f"{subject}#{version}"
            changed.append((position, name, key, "update" if subject in existing else "insert", text,
                            ref if codec.cipher is None else codec.seal(ref)["sealed"], iso(event.timestamp)))
            written[(name, subject)] = data
        insert_many(conn, view, inserts)
        for rows, columns in ((updates, ("data", "protocol_version", "refs", "version", "position")),
                              (moves, ("version", "position"))):
            if rows:
                conn.execute(sa.update(view).where(view.c.subject == sa.bindparam("key"))
                             .values(**{c: sa.bindparam(c) for c in columns}), rows)
        insert_many(conn, changes, changed)

    def _stream_prefix(self, pid: UUID, version: int) -> Any:
        return self.app.events.get(pid, lte=version)

    # ------------------------------------------------------------------ rebuilding

    def _check_protocol(self, names: Sequence[str]) -> None:
        rows = self.tracking()
        stale = [n for n in PROJECTIONS if n in names and rows[n]["digest"] != self.digest]  # lock order
        if stale:
            self.notify(f"projections {', '.join(stale)} were computed under another protocol or by another "
                        f"version of pgf: rebuilding them under {self.params.version}")
            self._reset(stale)

    def _reset(self, names: Sequence[str]) -> None:
        for _ in range(MAX_RETRIES):
            state = self.tracking()
            try:
                with self._write() as conn:
                    for name in names:
                        claimed = conn.execute(
                            sa.update(tracking)
                            .where(tracking.c.name == name, tracking.c.position == state[name]["position"],
                                   tracking.c.digest == state[name]["digest"])
                            .values(position=0, digest=self.model_digests.get(name, self.digest),
                                    protocol_version=self.params.version)
                        )
                        if claimed.rowcount != 1:
                            raise Conflict(name)
                        if name not in views:  # a stream model
                            conn.execute(sa.delete(model_table(name)))
                            continue
                        conn.execute(sa.delete(views[name]))
                        self._written = {k: v for k, v in self._written.items() if k[0] != name}
                    dropped = [name for name in names if name in views]
                    if dropped:  # one pass over the change rows for every projection reset, not one each
                        conn.execute(sa.delete(changes).where(changes.c.projection.in_(dropped)))
                return
            except Conflict:
                continue
        raise RuntimeError("could not reset the projections: other processes kept moving them")

    def rebuild(self, name: str | None = None, models: Sequence[StreamModel] = ()) -> dict[str, Any]:
        """Drop the rows, changes and position of one projection (or all) and replay the log from zero.

        ``models``: stream models rebuilt in the same pass (:mod:`.model_store` made their tables and
        tracking rows); each stream is read, decoded and folded once for all of them."""
        if name is not None and name not in PROJECTIONS:
            raise ValueError(f"unknown projection {name!r}")
        names = list(PROJECTIONS) if name is None else [name]
        self.setup()
        started = time.perf_counter()
        self._reset([*names, *(m.name for m in models)])
        self._cache.clear()
        self.model_rows_written.clear()
        applied = self.catch_up(names, models=models)
        seconds = time.perf_counter() - started
        return {"projections": names, "events": applied, "seconds": seconds,
                "events_per_second": applied / seconds if seconds else None}
