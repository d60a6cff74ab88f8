"""A whole read of a read model (a declared cut-off's rows, the snapshot of a projection) runs no cycle
collection while it parses thousands of JSON documents (:data:`pgf_events.gc_tuning.WHOLE_READ_THRESHOLD`):
at 5,000 patients the collections the bulk threshold still allowed doubled the read of a cut-off's rows."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import orjson
import pytest

from pgf_events import gc_tuning
from pgf_events.application import TrialConduct
from pgf_events.gc_tuning import BULK_THRESHOLD, WHOLE_READ_THRESHOLD, fewer_collections, made_long_lived
from pgf_events.projections import cutoff_rows, model_store, snapshot
from pgf_events.projections.store import ProjectionStore
from pgf_events.store import parse_url
from tests.conftest import Pgf

DOCUMENT = orjson.dumps({"subject": "S001", "slices": {f"s{n}": {"rows": [{"day": d, "anc": 0.5} for d in range(8)]}
                                                       for n in range(6)}})


def _collections_while(threshold: int, documents: int) -> int:
    """How many cycle collections start while ``documents`` JSON documents are parsed and kept."""
    started: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(info["generation"])

    kept = []
    gc.collect()  # no allocations pending from before: only the block's own count
    try:
        with fewer_collections(threshold):
            gc.callbacks.append(seen)  # inside the block only (leaving it, the young objects are collected)
            kept = [orjson.loads(DOCUMENT) for _ in range(documents)]
            gc.callbacks.remove(seen)
    finally:
        if seen in gc.callbacks:
            gc.callbacks.remove(seen)
    assert len(kept) == documents
    return len(started)


def test_a_whole_read_block_runs_no_cycle_collection_where_the_bulk_threshold_does() -> None:
    assert gc.isenabled()
    before = gc.get_threshold()
    assert _collections_while(BULK_THRESHOLD, 5_000) > 0  # ~160 objects a document: 800,000 allocations
    assert _collections_while(WHOLE_READ_THRESHOLD, 5_000) == 0
    assert gc.get_threshold() == before  # put back when the block ends


@contextmanager
def _thresholds_asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    asked: list[int] = []

    @contextmanager
    def recording(threshold: int = BULK_THRESHOLD) -> Iterator[None]:
        asked.append(threshold)
        with fewer_collections(threshold):
            yield

    for module in (model_store, snapshot):
        monkeypatch.setattr(module, "fewer_collections", recording)
    yield asked


def test_what_a_whole_read_made_is_frozen_before_the_thresholds_come_back() -> None:
    """Leaving the block, what a whole read made (kept as long as the model: :func:`made_long_lived`) is
    frozen first, which zeroes the young generation's count: no collection walks it at the next allocation."""
    started: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    try:
        with fewer_collections(WHOLE_READ_THRESHOLD):
            gc.callbacks.append(seen)
            kept = [orjson.loads(DOCUMENT) for _ in range(2_000)]
            made_long_lived(len(kept))
        pending = gc.get_count()[0]  # young objects counted toward the next collection: none from the read
        gc.callbacks.remove(seen)
        assert started == [] and pending < 100
    finally:
        if seen in gc.callbacks:
            gc.callbacks.remove(seen)
        gc.unfreeze()


def test_whole_reads_of_the_read_models_ask_for_no_collection(pgf: Pgf, monkeypatch: pytest.MonkeyPatch) -> None:
    pgf.ok("demo", "--patients", "6", "--seed", "3")
    pgf.ok("projections", "cutoff", "2025-03-31")
    app = TrialConduct(parse_url(pgf.url, cipher_key=""))
    store = ProjectionStore(app)
    try:
        with _thresholds_asked(monkeypatch) as asked:
            cutoff_rows._KEPT.clear()  # noqa: SLF001 - read from the table, as a new process does
            kept = cutoff_rows.rows_of(store, date(2025, 3, 31))
            assert kept and asked == [WHOLE_READ_THRESHOLD]
            rows = snapshot.snapshot_of(store).rows("dosing")
            assert rows and asked == [WHOLE_READ_THRESHOLD, WHOLE_READ_THRESHOLD]
    finally:
        store.close()
        app.close()
    assert gc_tuning._HELD[0] == 0  # noqa: SLF001 - every block left
