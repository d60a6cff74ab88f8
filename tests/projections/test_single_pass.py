"""``pgf projections rebuild`` keeps the projections and every stream model (the worklist's) in ONE
pass over the log: each stream is read and decoded once, and the rows it writes are those the live
catch-up wrote, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.domain.patient import Patient
from pgf_events.log import notifications
from pgf_events.projections import replay
from pgf_events.projections.model_store import ModelKeeper
from pgf_events.projections.signatures import signatures
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.tables import worklist_rows
from pgf_events.projections.worklist_model import WorklistModel
from pgf_events.projections.worklist_rows import WORKLIST, signed
from pgf_events.store import parse_url
from pgf_events.topics import PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX
from tests.conftest import Pgf
from tests.projections.test_worklist_model import _changes


@pytest.fixture
def demo_any(pgf_any: Pgf) -> Pgf:
    pgf_any.ok("demo", "--patients", "8", "--seed", "5")
    return pgf_any


def _open(pgf: Pgf, batch_size: int = 500) -> tuple[TrialConduct, ProjectionStore]:
    app = TrialConduct(parse_url(pgf.url, cipher_key=""))
    return app, ProjectionStore(app, batch_size=batch_size)


def _worklist(store: ProjectionStore) -> dict[tuple[str, str], tuple[Any, int, int]]:
    with store.engine.connect() as conn:
        return {(r.subject, r.kind): (r.data, r.version, r.position) for r in conn.execute(sa.select(worklist_rows))}


def _kept_streams(app: TrialConduct) -> int:
    """The events of every patient and review stream: what one pass decodes."""
    return sum(1 for n in notifications(app.recorder)
               if n.topic.startswith((PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX)))


def test_one_pass_decodes_each_event_once_and_writes_the_live_rows(demo_any: Pgf, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = _open(demo_any, batch_size=50)  # a demo is many batches: a rebuild replays by stream
    try:
        live = WorklistModel(store)
        live.catch_up()
        for _step in _changes(demo_any, tmp_path):  # each change caught up in a batch of its own
            live.catch_up()
            store.catch_up()
        rows = _worklist(store)
        assert {kind for _, kind in rows} == {"patient", "queries"}
        projections = {name: store.rows(name) for name in PROJECTIONS}

        monkeypatch.setattr(replay, "CHUNK_EVENTS", 150)  # several chunks, so several transactions
        decoded = {"n": 0}
        decode = app.mapper._decode

        def counting(*args: Any) -> Any:
            decoded["n"] += 1
            return decode(*args)

        monkeypatch.setattr(app.mapper, "_decode", counting)
        keeper = ModelKeeper(store, WORKLIST)
        assert keeper.available()
        result = store.rebuild(None, [WORKLIST])
        assert result["events"] == store.head()
        assert decoded["n"] == _kept_streams(app)  # once per event of a patient or review stream
        assert _worklist(store) == rows  # the same data, versions and positions the live catch-up wrote
        assert {name: store.rows(name) for name in PROJECTIONS} == projections
        assert keeper.tracking()[0] == store.head() and keeper.catch_up() == 0
        assert store.model_rows_written["worklist"] == len(rows)
    finally:
        store.close()
        app.close()


def test_pgf_projections_rebuild_rebuilds_the_worklist_in_the_same_pass(demo_any: Pgf) -> None:
    app, store = _open(demo_any)
    try:
        WorklistModel(store).catch_up()
        demo_any.ok("query", "open", "S003#1", "--text", "birth date?")
        WorklistModel(store).catch_up()
        rows = _worklist(store)
        doc = json.loads(demo_any.ok("projections", "rebuild", "--json").stdout)
        assert doc["worklist_rows"] >= len(rows) and doc["events"] == store.head()  # rows written (some twice)
        assert _worklist(store) == rows
        assert ("S003", "queries") in rows
        assert "worklist_rows" not in json.loads(demo_any.ok("projections", "rebuild", "dosing", "--json").stdout)
    finally:
        store.close()
        app.close()


def test_a_model_far_behind_takes_the_pass_alone(demo_any: Pgf, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worklist's own catch-up from zero (no projection in the pass): the rows a batch-by-batch
    catch-up writes."""
    app, store = _open(demo_any)
    try:
        by_batch = WorklistModel(store)
        monkeypatch.setattr("pgf_events.projections.model_store.BATCH", 10**9)  # never far behind
        by_batch.rebuild()
        rows = _worklist(store)
        monkeypatch.setattr("pgf_events.projections.model_store.BATCH", 1)  # always far behind
        derived = {"projections": 0}
        derive = replay.derive_patient

        def counting(*args: Any, **kwargs: Any) -> Any:
            derived["projections"] += 1
            return derive(*args, **kwargs)

        monkeypatch.setattr(replay, "derive_patient", counting)
        assert WorklistModel(store).rebuild() == len(rows)
        assert _worklist(store) == rows
        assert derived["projections"] == 0  # a model's pass derives no projection
    finally:
        store.close()
        app.close()


def test_signed_is_any_valid_signature(demo_any: Pgf, tmp_path: Path) -> None:
    from tests.audit.keys import CliSigner

    signer = CliSigner(demo_any, tmp_path, "dr.li")
    signer.sign("S002", "--meaning", "review")
    signer.sign("S002", "--meaning", "approval")
    demo_any.ok("record", "lab", "S002", "--date", "2025-04-01", "--anc", "0.3")
    signer.sign("S002", "--meaning", "review")
    app, store = _open(demo_any)
    try:
        events = app.stream("S002")
        assert any(isinstance(e, Patient.Signed) for e in events)
        for end in range(1, len(events) + 1):
            assert signed(events[:end]) == any(s["valid"] for s in signatures(events[:end])), end
    finally:
        store.close()
        app.close()

