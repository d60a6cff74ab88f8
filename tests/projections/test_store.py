"""Projection tables on SQLite and PostgreSQL: catch-up, exactly-once, changes, rebuild, protocol."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.slices import PROJECTIONS, all_slices
from pgf_events.projections.store import ProjectionStore, changes, tracking, views
from pgf_events.protocol import Protocol
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.helpers import USER, infuse
from tests.projections.common import lab, treated


def _open(url: str, protocol: Protocol | None = None) -> TrialConduct:
    return TrialConduct(parse_url(url), protocol or Protocol(), clock=lambda: NOW)


@pytest.fixture
def app_on(store_url: str) -> Iterator[TrialConduct]:
    application = _open(store_url)
    yield application
    application.close()


@pytest.fixture
def store(app_on: TrialConduct) -> Iterator[ProjectionStore]:
    projections = ProjectionStore(app_on)
    yield projections
    projections.close()


def _cohort(app: TrialConduct) -> None:
    for subject in ("S001", "S002", "S003"):
        treated(app, subject)
        lab(app, "2025-03-02", subject, anc=0.6, plt=25, hb=72)
        lab(app, "2025-03-04", subject, anc=0.7, plt=30, hb=68)
    infuse(app, "S002", "2025-03-08")
    app.record("death", "S003", {"date": "2025-03-10"}, user=USER)


def _expected(app: TrialConduct, name: str) -> list[dict]:
    out = []
    for subject in sorted(app.subjects()):
        patient, recorded = fold(app.stream(subject))
        assert patient is not None
        out.append(all_slices(derive_patient(patient, app.protocol, recorded).as_json())[name])
    return out


def test_catch_up_applies_every_notification_and_tracks_the_head(app_on: TrialConduct, store: ProjectionStore) -> None:
    _cohort(app_on)
    head = store.head()
    assert store.catch_up() == head
    assert store.catch_up() == 0
    assert {row["position"] for row in store.tracking().values()} == {head}
    lab(app_on, "2025-03-06", "S001", anc=0.8)
    assert store.catch_up() == 1
    for name in PROJECTIONS:
        assert store.rows(name) == _expected(app_on, name)
    assert [r["behind"] for r in store.status()] == [0] * len(PROJECTIONS)


def test_projection_tables_live_in_the_event_database(app_on: TrialConduct, store: ProjectionStore) -> None:
    _cohort(app_on)
    store.catch_up()
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"pgf_projection_tracking", "pgf_changes"} | {f"pgf_view_{n}" for n in PROJECTIONS} <= tables
    if app_on.store.backend == "sqlite":
        assert "stored_events" in tables
    else:
        assert "pgf_events" in tables


def test_a_change_row_is_written_only_when_a_projection_changes(app_on: TrialConduct, store: ProjectionStore) -> None:
    _cohort(app_on)
    store.catch_up()
    with store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(changes)).scalar_one()
    lab(app_on, "2025-03-03", "S001", wbc=1.2)  # no ANC/Hb/PLT, not the latest date: nothing derived changes
    store.catch_up()
    mark = store.head()
    # A later date moves the evaluation date (and may raise automatic queries, saved with the lab on
    # the patient's review stream: they derive nothing, so no change row points at them).
    lab(app_on, "2025-03-20", "S001", anc=0.9)
    store.catch_up()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(changes).where(changes.c.position > mark)).all()
        total = conn.execute(sa.select(sa.func.count()).select_from(changes)).scalar_one()
        version = conn.execute(sa.select(views["dosing"].c.version).where(views["dosing"].c.subject == "S001"))
        assert version.scalar_one() == 9
    assert {r.event_ref for r in rows} == {"S001#9"}
    assert {r.projection for r in rows} == {"dosing", "endpoints", "safety", "gvhd", "infections", "survival"}
    assert total == before + len(rows)
    assert all(r.kind == "update" and r.recorded_at.endswith("Z") for r in rows)


def test_concurrent_catch_ups_apply_each_notification_exactly_once(store_url: str) -> None:
    writer = _open(store_url)
    _cohort(writer)
    for day in range(10, 29):
        lab(writer, f"2025-03-{day}", "S001", anc=day / 10)
    apps = [_open(store_url) for _ in range(3)]
    stores = [ProjectionStore(a, batch_size=4) for a in apps]
    stores[0].setup()
    applied: list[int] = []
    errors: list[BaseException] = []

    def run(projections: ProjectionStore) -> None:
        try:
            applied.append(projections.catch_up())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(applied) == stores[0].head()  # every notification applied by exactly one of them
    for name in PROJECTIONS:
        assert stores[0].rows(name) == _expected(writer, name)
    for s, a in zip(stores, apps, strict=True):
        s.close()
        a.close()
    writer.close()


def test_rebuild_reproduces_rows_and_changes(app_on: TrialConduct, store: ProjectionStore) -> None:
    _cohort(app_on)
    store.catch_up()
    before = {name: store.rows(name) for name in PROJECTIONS}
    result = store.rebuild()
    assert result["events"] == store.head() and result["projections"] == list(PROJECTIONS)
    assert {name: store.rows(name) for name in PROJECTIONS} == before
    with store.engine.connect() as conn:
        kinds = {r.projection: r.kind for r in conn.execute(sa.select(changes.c.projection, changes.c.kind))}
    assert set(kinds) == set(PROJECTIONS)


def test_rebuilding_one_projection_leaves_the_others_alone(app_on: TrialConduct, store: ProjectionStore) -> None:
    _cohort(app_on)
    store.catch_up()
    with store.engine.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(changes)
                            .where(changes.c.projection == "eligibility")).scalar_one()
    result = store.rebuild("dosing")
    assert result["projections"] == ["dosing"] and result["events"] == store.head()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(changes)
                            .where(changes.c.projection == "eligibility")).scalar_one() == kept
    assert store.rows("dosing") == _expected(app_on, "dosing")


def test_another_protocol_rebuilds_the_projections(store_url: str) -> None:
    first = _open(store_url)
    treated(first)
    infuse(first, "S001", "2025-03-11", deviation="clinic closed")  # day 11: late with a ±2-day window, on time with ±4
    lab(first, "2025-03-12", anc=0.4)
    one = ProjectionStore(first)
    one.catch_up()
    assert one.rows("dosing")[0]["dosing"]["late"] == 1
    one.close()
    first.close()
    wide = Protocol.from_mapping({"dose_window_days": 4})
    second = _open(store_url, wide)
    messages: list[str] = []
    two = ProjectionStore(second, notify=messages.append)
    two.catch_up()
    assert messages and "rebuilding" in messages[0]
    row = two.rows("dosing")[0]
    assert row["protocol_version"] == wide.version and row["dosing"]["late"] == 0
    with two.engine.connect() as conn:
        versions = {r.protocol_version for r in conn.execute(sa.select(tracking.c.protocol_version))}
    assert versions == {wide.version}
    two.close()
    second.close()


def test_non_patient_events_are_skipped_but_passed(tmp_path) -> None:
    """Import batches and the user directory share the log: projections step over them."""
    import getpass
    import json

    from tests.conftest import Pgf

    pgf = Pgf(f"sqlite:///{tmp_path}/mixed.db", user=getpass.getuser())
    pgf.ok("demo", "--patients", "2", "--seed", "4", "--jsonl", str(tmp_path / "c.jsonl"))
    pgf.ok("import", str(tmp_path / "c.jsonl"))
    pgf.ok("users", "grant", getpass.getuser(), "admin")
    pgf.ok("users", "grant", getpass.getuser(), "coordinator")
    assert "enrolled" in pgf.ok("report", "eligibility").stdout
    status = json.loads(pgf.ok("projections", "status", "--json").stdout)
    assert all(row["behind"] == 0 and row["position"] == row["head"] for row in status["projections"])
