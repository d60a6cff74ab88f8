"""The audit page's stored read model (``pgf_view_audit``, pgf_events/audit/finding_rows.py): a rebuild
writes the rows the live catch-up wrote, ``pgf projections verify`` catches an edited, moved or
deleted row naming the subject (SQLite and PostgreSQL), a store made before the model builds it on
first use, a site-scoped reader sees only its sites' findings, and the deviations do not depend on
the day they are judged on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.audit.exceptions import exception_rows
from pgf_events.audit.finding_rows import AUDIT
from pgf_events.audit.findings import AuditModel
from pgf_events.audit.source import patient_streams
from pgf_events.projections.deviations import deviation_rows, patient_deviations
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.tables import model_table, tracking
from pgf_events.store import parse_url
from tests.conftest import Pgf
from tests.projections.test_verify_read_models import RowEditor
from tests.projections.test_worklist_model import _changes


@pytest.fixture
def demo_any(pgf_any: Pgf) -> Pgf:
    pgf_any.ok("demo", "--patients", "6", "--seed", "3")
    return pgf_any


@pytest.fixture
def opened(pgf: Pgf) -> Iterator[tuple[Pgf, TrialConduct, ProjectionStore]]:
    pgf.ok("demo", "--patients", "12", "--seed", "5")
    app = TrialConduct(parse_url(pgf.url, cipher_key=""))
    store = ProjectionStore(app)
    try:
        yield pgf, app, store
    finally:
        store.close()
        app.close()


def _rows(store: ProjectionStore) -> dict[tuple[str, str], tuple[Any, int, int]]:
    with store.engine.connect() as conn:
        return {(r.subject, r.kind): (r.data, r.version, r.position)
                for r in conn.execute(sa.select(model_table(AUDIT.name)))}


def _as_commands(model: AuditModel, app: TrialConduct) -> None:
    exceptions, deviations = model.tables(app.in_scope, app.clock())
    assert list(exceptions) == exception_rows(app)
    assert deviations == deviation_rows(app)


def test_a_rebuild_writes_the_rows_the_live_catch_up_wrote(opened: Any, tmp_path: Path) -> None:
    pgf, app, store = opened
    live = AuditModel(store)
    for _ in ["demo", *_changes(pgf, tmp_path)]:
        _as_commands(live, app)
    rows = _rows(store)
    assert len(rows) == len(app.subjects()) and {kind for _, kind in rows} == {"patient"}
    assert any(d["exceptions"] for d, _, _ in rows.values()) and any(d["deviations"] for d, _, _ in rows.values())
    AuditModel(store).keeper.rebuild()  # its own pass
    assert _rows(store) == rows
    doc = json.loads(pgf.ok("projections", "rebuild", "--json").stdout)  # the projections' one pass
    assert doc["audit_rows"] >= len(rows) and doc["worklist_rows"] > 0
    assert _rows(store) == rows
    _as_commands(AuditModel(store), app)


def test_a_store_made_before_the_model_builds_it_on_first_use(opened: Any) -> None:
    _, app, store = opened
    AuditModel(store).keeper.catch_up()
    rows = _rows(store)
    with store.engine.begin() as conn:  # as an older version left the store: no table, no tracking row
        model_table(AUDIT.name).drop(conn)
        conn.execute(sa.delete(tracking).where(tracking.c.name == AUDIT.name))
    fresh = ProjectionStore(app)
    try:
        _as_commands(AuditModel(fresh), app)
        assert _rows(fresh) == rows
        with fresh.engine.begin() as conn:  # as an older version of the model's code: another digest
            conn.execute(sa.update(tracking).where(tracking.c.name == AUDIT.name).values(digest="older"))
        model = AuditModel(fresh)
        _as_commands(model, app)
        assert model.keeper.tracking() == (fresh.head(), model.keeper.digest) and _rows(fresh) == rows
    finally:
        fresh.close()


def test_a_site_scoped_reader_sees_only_its_sites_findings(opened: Any) -> None:
    _, app, store = opened
    model = AuditModel(store)
    every = model.tables(app.in_scope, app.clock())[1]
    sites = sorted({r["site"] for r in every})
    assert len(sites) > 1
    exceptions, deviations = model.tables(lambda site: site == sites[0], app.clock())
    mine = {subject for subject in app.subjects() if app.stream(subject)[0].record.site == sites[0]}
    assert deviations == [r for r in every if r["site"] == sites[0]] and deviations
    assert exceptions and {r["subject"] for r in exceptions} <= mine


def test_the_deviations_do_not_depend_on_the_day_they_are_judged_on(opened: Any) -> None:
    from pgf_events.audit.source import fold
    from pgf_events.projections.derive import derive_patient
    from pgf_events.projections.deviations import dosing_of

    _, app, _ = opened
    for subject, events in patient_streams(app):
        patient = fold(events)
        assert dosing_of(patient, app.protocol) == derive_patient(patient, app.protocol).dosing, subject
        today = patient_deviations(subject, events, app.protocol, now=app.clock())
        for now in (datetime(2024, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)):
            assert patient_deviations(subject, events, app.protocol, now=now) == today, (subject, now)


def test_an_edited_moved_or_deleted_audit_row_is_caught(demo_any: Pgf) -> None:
    out = demo_any.ok("projections", "verify").stdout  # makes and catches up the stream models
    assert out.startswith("read models intact: 7 projection(s) and 3 stream model(s)")
    doc = json.loads(demo_any.ok("projections", "verify", "audit", "--json").stdout)
    assert doc["ok"] and doc["models"] == ["audit"] and doc["rows"] >= 6
    editor = RowEditor(demo_any.url)
    where = f"{editor.view('audit')} WHERE subject = ? AND kind = 'patient'"
    try:  # S002's findings said to be another site's
        data = editor.row("audit", "S002")
        data["site"] = "ELSEWHERE"
        editor.set_row("audit", "S002", data)
    finally:
        editor.close()
    for args in (["projections", "verify"], ["projections", "verify", "audit"]):
        result = demo_any(*args)
        assert result.exit_code == 1, args
        assert "read model audit differs from the event log at subject S002: patient row: site is" in result.stderr
    demo_any.ok("projections", "rebuild")  # the explicit repair
    demo_any.ok("projections", "verify")
    editor = RowEditor(demo_any.url)
    try:
        editor.sql(f"UPDATE {where.replace(' WHERE', ' SET position = position - 1 WHERE')}", ("S003",))
        result = demo_any("projections", "verify", "audit")
        assert result.exit_code == 1 and "at subject S003: patient row: it says stream version" in result.stderr
        editor.sql(f"DELETE FROM {where}", ("S003",))
        result = demo_any("projections", "verify", "audit")
        assert result.exit_code == 1 and "S003: the table has no patient row for this subject" in result.stderr
    finally:
        editor.close()


def test_where_the_table_cannot_be_kept_the_findings_come_from_the_log(opened: Any, tmp_path: Path) -> None:
    pgf, app, store = opened
    model = AuditModel(store)
    model.keeper._ready = False  # as on a read-only copy
    for _ in ["demo", *_changes(pgf, tmp_path)]:
        _as_commands(model, app)
    assert model.streams_read < 2 * len(app.subjects())  # each change derived only the streams it touched


def test_the_first_rows_are_the_merge_s_reading_only_the_patients_reached() -> None:
    import heapq
    import random
    from itertools import islice

    from pgf_events.audit.exceptions import KINDS, _key, first_rows
    from pgf_events.audit.finding_rows import ExceptionRows
    from pgf_events.projections.tables import json_text

    rng = random.Random(7)
    reads = {"n": 0}

    class Counted(ExceptionRows):
        __slots__ = ()

        def __iter__(self) -> Iterator[dict[str, Any]]:
            reads["n"] += 1
            return super().__iter__()

    for _ in range(30):
        lists: list[Any] = []
        for p in range(rng.randint(0, 12)):
            raw = sorted(([rng.choice(KINDS[:5]), [f"S{p}#{i}"], "u", f"2025-01-0{rng.randint(1, 3)}T00:00:00+00:00",
                           None, str(i)] for i in range(rng.randint(0, 6))), key=lambda r: (r[3], KINDS.index(r[0])))
            doc = {"exceptions": json_text(raw), "counts": {}, "head": [raw[0][3], raw[0][0]] if raw else None}
            lists.append(Counted(f"S{p:02}", doc) if p % 3 else list(ExceptionRows(f"S{p:02}", doc)))
        for n in (0, 1, 3, 10, 100):
            reads["n"] = 0
            assert first_rows(lists, n) == list(islice(heapq.merge(*lists, key=_key), n)), n
        reads["n"] = 0
        first_rows(lists, 1)
        assert reads["n"] <= 1  # only the list holding the first row was read
