"""Keeping one stream model's table (:mod:`.stream_models`) caught up from the notification log.

The projections' protocol (:mod:`.store`): the model's tracking row in ``pgf_projection_tracking``
is moved conditionally on its old position in the transaction that writes the rows, so concurrent
readers apply each notification once. Near the head a batch reads each stream it touches from its
first event to the batch's last one and writes that stream's rows; far behind (a first read, a
rebuild) it takes the projections' replay by stream (:meth:`.store.ProjectionStore._replay`), and
``pgf projections rebuild`` rebuilds every model in the projections' own pass. The digest covers the
protocol and the code (:meth:`.stream_models.StreamModel.digest`): a change rebuilds the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from pgf_events.gc_tuning import WHOLE_READ_THRESHOLD, fewer_collections, made_long_lived
from pgf_events.projections.derive import fold
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.stream_models import Stream, StreamModel
from pgf_events.projections.tables import Conflict, model_table, tracking

BATCH = 500
MAX_RETRIES = 50


class ModelKeeper:
    """One stream model's rows in one :class:`ProjectionStore`'s database."""

    def __init__(self, store: ProjectionStore, model: StreamModel):
        self.store, self.model, self.app = store, model, store.app
        self.params = store.params
        self.table = model_table(model.name)
        self.digest = model.digest(self.params)
        self._ready: bool | None = None

    def available(self) -> bool:
        """Whether the table can be used (it is made on first use; a login that may not create it, or a
        read-only copy without it, cannot keep it)."""
        if self._ready is None:
            self._ready = self._setup()
        return self._ready

    def _setup(self) -> bool:
        if self.app.store.read_only:
            return False
        name = self.model.name
        try:
            self.store.setup()
            self.table.metadata.create_all(self.store.engine)
            with self.store._write() as conn:  # noqa: SLF001 - a write transaction of that store
                if conn.execute(sa.select(tracking.c.name).where(tracking.c.name == name)).first() is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(sa.insert(tracking).values(name=name, position=0, digest=self.digest,
                                                                    protocol_version=self.params.version))
                    except IntegrityError:
                        pass  # another process made it first
        except DBAPIError:
            return False
        self.store.model_digests[name] = self.digest
        return True

    def tracking(self) -> tuple[int, str]:
        with self.store._read() as conn:  # noqa: SLF001
            row = conn.execute(sa.select(tracking.c.position, tracking.c.digest)
                               .where(tracking.c.name == self.model.name)).one()
        return int(row.position), str(row.digest)

    def catch_up(self) -> int:
        """Apply every notification not yet applied; returns how many rows this call wrote."""
        if not self.available():
            raise RuntimeError(f"the {self.model.name} read model is not available on this store")
        name, store = self.model.name, self.store
        before = store.model_rows_written.get(name, 0)
        conflicts = 0
        last_start = -1
        while True:
            start, digest = self.tracking()
            if start != last_start:
                conflicts, last_start = 0, start
            try:
                if digest != self.digest:
                    store._reset([name])  # noqa: SLF001 - the store resets its tracked rows
                    continue
                head = self.app.recorder.max_notification_id() or 0
                if start >= head:
                    return store.model_rows_written.get(name, 0) - before
                if head - start > 2 * BATCH:
                    store._replay({name: {"position": start}}, head, [self.model])  # noqa: SLF001
                    continue
                batch = self.app.recorder.select_notifications(start=start + 1, limit=BATCH, stop=head)
                self._apply(start, batch[-1].id if batch else head, batch)
            except Conflict:
                conflicts += 1
                if conflicts > MAX_RETRIES:
                    raise RuntimeError(f"the {name} read model kept conflicting with other processes") from None

    def rebuild(self) -> int:
        """Drop the rows and replay the log from zero (alone; ``pgf projections rebuild`` rebuilds the
        models with the projections); returns how many rows were written."""
        if not self.available():
            raise RuntimeError(f"the {self.model.name} read model is not available on this store")
        self.store._reset([self.model.name])  # noqa: SLF001
        return self.catch_up()

    def _apply(self, start: int, stop: int, batch: Sequence[Any]) -> None:
        """Each stream the batch touches, read to its last event in the batch: its rows."""
        streams: dict[UUID, tuple[int, int]] = {}
        for n in batch:
            if self.model.wants(n.topic):
                streams[n.originator_id] = (n.originator_version, n.id)
        rows = []
        for oid, (version, position) in streams.items():
            stored = self.app.recorder.select_events(oid, lte=version)
            if not stored or not self.model.wants(stored[0].topic):
                continue
            events = [self.app.mapper.to_domain_event(s) for s in stored]
            aggregate, recorded = fold(events)
            stream = Stream(oid, position, stored[0].topic, events, aggregate, recorded)
            rows += [(kind, subject, data, version, position) for kind, subject, data in self.model.rows(stream, self.params)]
        state = {self.model.name: {"position": start}}
        self.store._commit(state, stop, {}, {}, {}, {self.model.name: rows})  # noqa: SLF001


class KeptRows:
    """A stream model's rows in memory, by (subject key, kind): (version, data); :meth:`read` re-reads
    only the rows past the last position seen (as :mod:`.snapshot` does for the projections)."""

    def __init__(self, keeper: ModelKeeper):
        self.keeper = keeper
        self.rows: dict[tuple[str, str], tuple[int, Any]] = {}
        self._seen: tuple[int, int, int] | None = None  # (count, sum of versions, max position)
        self.full_reads = 0

    def read(self) -> bool:
        """Bring :attr:`rows` up to the table; True when they were read whole again (rows went away or
        were rewritten at older positions): whatever a reader derived from the old ones is stale."""
        store, t = self.keeper.store, self.keeper.table
        with store._read() as conn:  # noqa: SLF001
            shape = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.version), 0),
                              sa.func.coalesce(sa.func.max(t.c.position), 0))
            count, versions, position = (int(v) for v in conn.execute(shape).one())
            seen = (count, versions, position)
            if self._seen is not None:
                if seen == self._seen:
                    return False
                fresh = sa.select(t.c.subject, t.c.kind, t.c.version, t.c.data).where(t.c.position > self._seen[2])
                for r in conn.execute(fresh):
                    self.rows[(r.subject, r.kind)] = (r.version, store.codec.open(r.data))
                if (len(self.rows), sum(v for v, _ in self.rows.values())) == seen[:2]:
                    self._seen = seen
                    return False
            self.full_reads += 1
            with fewer_collections(WHOLE_READ_THRESHOLD):  # thousands of JSON documents: no cycle collection meanwhile
                self.rows = {(r.subject, r.kind): (r.version, store.codec.open(r.data))
                             for r in conn.execute(sa.select(t.c.subject, t.c.kind, t.c.version, t.c.data))}
                made_long_lived(len(self.rows))
            self._seen = seen
            return True
