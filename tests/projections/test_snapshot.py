"""The in-memory snapshot of the read models gives exactly the tables' rows, reading only what
changed after the first look, and everything again after a rebuild, on both backends."""

from __future__ import annotations

from pgf_events.application import TrialConduct
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.snapshot import Snapshot
from pgf_events.projections.store import ProjectionStore
from pgf_events.store import parse_url
from tests.helpers import enrolled, infuse


def test_the_snapshot_follows_the_tables(store_url: str) -> None:
    app = TrialConduct(parse_url(store_url))
    try:
        enrolled(app, "S001")
        enrolled(app, "S002")
        store = ProjectionStore(app)
        store.catch_up()
        snap = Snapshot(store)
        assert all(snap.rows(n) == store.rows(n) for n in PROJECTIONS)
        assert snap.full_reads == len(PROJECTIONS)
        infuse(app, "S002", "2025-02-25")
        enrolled(app, "S003")
        store.catch_up()
        assert all(snap.rows(n) == store.rows(n) for n in PROJECTIONS)
        assert snap.full_reads == len(PROJECTIONS)  # only the changed rows were read
        assert [r["subject"] for r in snap.rows("dosing")] == ["S001", "S002", "S003"]
        store.rebuild("dosing")
        assert snap.rows("dosing") == store.rows("dosing")
        store.close()
    finally:
        app.close()
