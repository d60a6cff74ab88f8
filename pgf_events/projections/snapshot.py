"""The read models' rows kept in memory between reads, refreshed by what changed since.

A page that shows the whole cohort (the dashboard) would otherwise decode every patient's JSON row
of every projection on each look. A :class:`Snapshot` reads a projection's rows once, then on each
later read asks the table only for its size, the sum of its rows' stream versions and its highest
position (one aggregate query), and re-reads only the rows whose position is past the last one
seen. If the table still does not add up afterwards (a rebuild, rows removed), it reads it whole
again. The rows are exactly :meth:`ProjectionStore.rows` (the tests compare them).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from pgf_events.gc_tuning import WHOLE_READ_THRESHOLD, fewer_collections, made_long_lived
from pgf_events.projections.per_store import PerStore
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.tables import views


class Snapshot:
    """In-memory copies of one :class:`ProjectionStore`'s rows (one per store; thread-safe)."""

    def __init__(self, store: ProjectionStore) -> None:
        self.store = store
        self._rows: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}  # name -> key -> (version, row)
        self._seen: dict[str, tuple[int, int, int]] = {}  # name -> (count, sum of versions, max position)
        self._lock = threading.Lock()
        self.full_reads = 0  # how often a table was read whole (for the tests)

    def rows(self, name: str) -> list[dict[str, Any]]:
        """The projection's rows ordered by subject, as :meth:`ProjectionStore.rows` returns them."""
        mine = self._refresh(name)
        with self._lock:  # another thread's refresh may add rows meanwhile
            return sorted((row for _, row in mine.values()), key=lambda r: r.get("subject", ""))

    def versioned(self, name: str) -> Mapping[str, tuple[int, dict[str, Any]]]:
        """The projection's rows with the stream version each reflects, by the table's subject column
        (``codec.key(subject)``), refreshed first. The snapshot's own mapping, not a copy: look rows up,
        do not keep it (a later refresh updates it in place)."""
        return self._refresh(name)

    def _refresh(self, name: str) -> dict[str, tuple[int, dict[str, Any]]]:
        self.store.setup()
        view = views[name]
        with self._lock, self.store._read() as conn:  # noqa: SLF001 - a read transaction of that store
            shape = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(view.c.version), 0),
                              sa.func.coalesce(sa.func.max(view.c.position), 0))
            seen = tuple(int(v) for v in conn.execute(shape).one())
            mine = self._rows.get(name)
            if mine is not None and seen != self._seen[name]:
                fresh = sa.select(view.c.subject, view.c.version, view.c.data).where(
                    view.c.position > self._seen[name][2])
                for r in conn.execute(fresh):
                    mine[r.subject] = (r.version, self.store.codec.open(r.data))
                if (len(mine), sum(v for v, _ in mine.values())) != seen[:2]:
                    mine = None  # rows went away or were rewritten at older positions: read it all
            if mine is None:
                self.full_reads += 1
                with fewer_collections(WHOLE_READ_THRESHOLD):  # thousands of JSON documents: no cycle collection meanwhile
                    mine = {r.subject: (r.version, self.store.codec.open(r.data))
                            for r in conn.execute(sa.select(view.c.subject, view.c.version, view.c.data))}
                    made_long_lived(len(mine))
            self._rows[name], self._seen[name] = mine, (seen[0], seen[1], seen[2])
            return mine


snapshot_of: PerStore[Snapshot] = PerStore(Snapshot)  # the one snapshot of a store in this process
