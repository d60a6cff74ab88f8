"""The worklist's read model: what ``pgf due`` needs of each patient, kept per patient and caught up
from the notification log, so the web worklist does not fold every stream on each look.

Table ``pgf_view_worklist`` (:func:`.tables.model_table`): a stream model (:mod:`.stream_models`)
whose rows (:mod:`.worklist_rows`) are, per subject, ``patient`` (the patient's
:class:`~.worklist.WorklistInputs` and, under ``recorded``, when its events were recorded:
:func:`.worklist_rows.recorded_span`, for time travel, :mod:`.travel`) and ``queries`` (the open
data queries of its review stream),
each with the stream version it reflects and that version's notification id. It is kept by
:class:`.model_store.ModelKeeper` (the projections' exactly-once protocol, tracking row
``worklist``) and rebuilt by ``pgf projections rebuild`` in the projections' own pass over the log;
a row is a pure function of its stream's prefix, so a rebuild gives the rows the live catch-up wrote
(tested), and ``pgf projections verify`` compares them with a replay.

Reading (:meth:`WorklistModel.items`) keeps the rows in memory and re-reads only those past the last
position seen (as :mod:`.snapshot` does for the projections), and keeps each patient's day-dependent
items (doses, labs, signature) for the day and row version they were computed for; SAE clocks and
query ages, which move with the time of day, are computed on each read.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from pgf_events.gc_tuning import fewer_collections
from pgf_events.projections import worklist
from pgf_events.projections.model_store import KeptRows, ModelKeeper
from pgf_events.projections.per_store import PerStore
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.worklist import WorklistInputs, items_of
from pgf_events.projections.worklist_rows import WORKLIST

NAME = WORKLIST.name


class WorklistModel:
    """The worklist read model of one :class:`ProjectionStore`'s log (one per store: :func:`model_of`)."""

    def __init__(self, store: ProjectionStore):
        self.store = store
        self.app = store.app
        self.params = store.params
        self.keeper = ModelKeeper(store, WORKLIST)
        self._lock = threading.RLock()
        self._kept = KeptRows(self.keeper)  # (key, kind) -> (version, data)
        self._inputs: dict[str, tuple[int, WorklistInputs]] = {}  # key -> (version, inputs)
        self._queries: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._days: dict[str, tuple[int, date, list[dict[str, Any]]]] = {}  # key -> (version, day, day items)

    def available(self) -> bool:
        """Whether the table can be used (else the worklist is read from the streams)."""
        return self.keeper.available()

    def position(self) -> int:
        return self.keeper.tracking()[0]

    def catch_up(self) -> int:
        """Apply every notification not yet applied; returns how many rows this call wrote."""
        return self.keeper.catch_up()

    def rebuild(self) -> int:
        """Drop the rows and replay the log from zero; returns how many rows were written."""
        return self.keeper.rebuild()

    # ------------------------------------------------------------------ reading

    def rows(self) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
        """Every row, by (subject key, kind): (version, data), re-reading only rows past the last position seen."""
        with self._lock:
            if self._kept.read():
                self._inputs.clear()
                self._queries.clear()
                self._days.clear()
            return self._kept.rows

    @property
    def full_reads(self) -> int:
        """How many times every row was read (the first read, and after rows went away)."""
        return self._kept.full_reads

    def items(self, on: date, at: datetime, subjects: Collection[str] | None = None) -> list[dict[str, Any]]:
        """``pgf due`` (unsorted) for every patient (or those of ``subjects``), planned for ``on`` at ``at``."""
        with self._lock, fewer_collections():  # a first read parses every patient's row: no cycle scans meanwhile
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
