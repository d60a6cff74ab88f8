"""Replaying stream by stream (far behind, or a rebuild) writes what catching up in log order writes,
on every backend, and an interrupted replay is finished exactly once by the next catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.demo import commands_for, plan_cohort
from pgf_events.projections import replay
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.store import ProjectionStore, changes, tracking
from pgf_events.store import parse_url

LOG_ORDER = 10**9  # a batch size no test log reaches: always catch up in log order
BY_STREAM = 1  # two batches behind already: always replay by stream


def _cohort(url: str) -> TrialConduct:
    """Eight demo patients recorded side by side (their events interleave in the log)."""
    app = TrialConduct(parse_url(url))
    plans = [commands_for(s) for s in plan_cohort(8, seed=21)]
    for step in range(0, max(map(len, plans)), 7):
        batch = [c for commands in plans for c in commands[step:step + 7]]
        app.execute(batch, user=app.acting_user())
    return app


@pytest.fixture
def app_on(store_url: str) -> Iterator[TrialConduct]:
    app = _cohort(store_url)
    yield app
    app.close()


def _tables(store: ProjectionStore) -> dict[str, Any]:
    with store.engine.connect() as conn:
        final = {}  # the last change row of each subject in each projection: what a follower ends with
        for row in conn.execute(sa.select(changes).order_by(changes.c.position)):
            final[(row.projection, row.subject)] = (row.data, row.event_ref)
        positions = {r.name: r.position for r in conn.execute(sa.select(tracking))}
    return {"rows": {name: store.rows(name) for name in PROJECTIONS}, "final": final, "positions": positions}


def test_replaying_by_stream_writes_what_log_order_writes(app_on: TrialConduct) -> None:
    log_order = ProjectionStore(app_on, batch_size=LOG_ORDER)
    assert log_order.rebuild()["events"] == log_order.head()
    expected = _tables(log_order)
    log_order.close()
    by_stream = ProjectionStore(app_on, batch_size=BY_STREAM)
    assert by_stream.rebuild()["events"] == by_stream.head()
    assert _tables(by_stream) == expected
    assert by_stream.catch_up() == 0
    by_stream.close()


def test_the_library_api_and_the_recorder_queries_find_the_same_streams(app_on: TrialConduct) -> None:
    head = app_on.recorder.max_notification_id()
    fast = replay.stream_heads(app_on, 0, head)

    class Plain:  # the same recorder seen through the library's API only
        def __init__(self, recorder: Any):
            self.select_notifications = recorder.select_notifications
            self.select_events = recorder.select_events

    plain = type("App", (), {"recorder": Plain(app_on.recorder), "mapper": app_on.mapper})()
    assert replay.stream_heads(plain, 0, head) == fast
    assert replay.stream_heads(plain, 40, head - 5) == replay.stream_heads(app_on, 40, head - 5)
    assert sum(h.count for h in fast) == head
    streams = [(h, [e.originator_version for e in events]) for h, events in replay.patient_streams(app_on, fast)]
    assert streams == [(h, [e.originator_version for e in events]) for h, events in replay.patient_streams(plain, fast)]
    assert all(versions == list(range(1, h.version + 1)) for h, versions in streams)


def test_an_interrupted_replay_is_finished_exactly_once(app_on: TrialConduct, monkeypatch: pytest.MonkeyPatch) -> None:
    expected_store = ProjectionStore(app_on, batch_size=LOG_ORDER)
    expected_store.catch_up()
    expected = {name: expected_store.rows(name) for name in PROJECTIONS}
    expected_store.close()

    monkeypatch.setattr(replay, "CHUNK_EVENTS", 40)  # several chunks, so the crash falls between two
    crashing = ProjectionStore(app_on, batch_size=BY_STREAM)
    crashing._reset(list(PROJECTIONS))
    calls = {"n": 0}
    commit = crashing._commit

    def crash_on_third(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return commit(*args, **kwargs)

    monkeypatch.setattr(crashing, "_commit", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        crashing.catch_up()
    position = min(r["position"] for r in crashing.tracking().values())
    assert 0 < position < crashing.head()  # two chunks committed, the rest not
    crashing.close()

    fresh = ProjectionStore(app_on)  # batch 500: less than two batches behind, so it catches up in log order
    fresh.catch_up()
    assert {name: fresh.rows(name) for name in PROJECTIONS} == expected
    assert fresh.catch_up() == 0
    fresh.close()


def test_a_second_process_derives_what_this_one_would(app_on: TrialConduct, monkeypatch: pytest.MonkeyPatch) -> None:
    log_order = ProjectionStore(app_on, batch_size=LOG_ORDER)
    log_order.rebuild()
    expected = _tables(log_order)
    log_order.close()
    monkeypatch.setattr(replay, "CHUNK_EVENTS", 30)
    monkeypatch.setattr(replay, "PARALLEL_MIN_EVENTS", 1)
    heads = replay.stream_heads(app_on, 0, app_on.recorder.max_notification_id())
    assert replay._share(app_on, heads, list(replay.chunks(heads)))
    shared = ProjectionStore(app_on, batch_size=BY_STREAM)
    assert shared.rebuild()["events"] == shared.head()
    assert _tables(shared) == expected
    shared.close()


def _as_of_whole_log(app: TrialConduct, as_of: Any) -> dict[str, Any]:
    """The reference: ``patients_as_of`` before issue 18, which held every patient event of the log."""
    from pgf_events.log import notifications
    from pgf_events.projections.queries import fold_as_of
    from pgf_events.topics import PATIENT_TOPIC_PREFIX

    streams: dict[Any, list[Any]] = {}
    for n in notifications(app.recorder):
        if n.topic.startswith(PATIENT_TOPIC_PREFIX):
            event = app.mapper.to_domain_event(n)
            streams.setdefault(event.originator_id, []).append(event)
    out = {}
    for events in streams.values():
        patient, recorded = fold_as_of(sorted(events, key=lambda e: e.originator_version), as_of)
        if patient is not None:
            out[patient.subject] = (patient.version, recorded)
    return out


def test_as_of_streams_chunk_by_chunk_and_folds_what_the_whole_log_folded(app_on: TrialConduct,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pgf_events.projections.queries import cohort_report, patients_as_of

    monkeypatch.setattr(replay, "CHUNK_EVENTS", 40)  # several chunks, streams never split
    stamps = sorted({n.timestamp for n in (app_on.mapper.to_domain_event(x) for x in
                                           app_on.recorder.select_notifications(start=1, limit=10**6))})
    for as_of in (stamps[0], stamps[len(stamps) // 3], stamps[len(stamps) // 2], stamps[-1]):
        streamed = {p.subject: (p.version, rec) for p, rec in patients_as_of(app_on, as_of)}
        assert streamed == _as_of_whole_log(app_on, as_of)
    assert len(streamed) == len(app_on.subjects()) > 1
    monkeypatch.setattr(replay, "CHUNK_EVENTS", 10**6)
    whole = cohort_report(app_on, "endpoints", as_of=stamps[len(stamps) // 2])
    monkeypatch.setattr(replay, "CHUNK_EVENTS", 40)
    assert cohort_report(app_on, "endpoints", as_of=stamps[len(stamps) // 2]) == whole


def test_a_replay_holds_a_bounded_number_of_stored_rows(app_on: TrialConduct, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk's streams are read a few at a time (issue 18: a whole chunk's payloads were fetched at
    once, some 15 MB more at the peak of each process of a 1M-event rebuild)."""
    log_order = ProjectionStore(app_on, batch_size=LOG_ORDER)
    log_order.rebuild()
    expected = _tables(log_order)
    log_order.close()
    monkeypatch.setattr(replay, "CHUNK_EVENTS", 10**6)  # one chunk: the whole log
    monkeypatch.setattr(replay, "READ_EVENTS", 100)
    recorder = app_on.recorder
    if not hasattr(recorder, "stream_rows"):
        pytest.skip("this recorder is read through the library's API, stream by stream")
    fetched: list[int] = []
    read = recorder.stream_rows

    def counted(streams: Any) -> Any:
        rows = read(streams)
        fetched.append(sum(len(r) for r in rows))
        return rows

    monkeypatch.setattr(recorder, "stream_rows", counted)
    by_stream = ProjectionStore(app_on, batch_size=BY_STREAM)
    assert by_stream.rebuild()["events"] == by_stream.head()
    assert _tables(by_stream) == expected
    by_stream.close()
    longest = max(h.version for h in replay.stream_heads(app_on, 0, app_on.recorder.max_notification_id()))
    assert len(fetched) > 1 and sum(fetched) == app_on.recorder.max_notification_id()
    assert max(fetched) < 100 + longest


def test_read_slices_cover_the_heads_in_order_never_splitting_a_stream() -> None:
    heads = [replay.StreamHead(None, version, n, version) for n, version in enumerate([5, 1, 30, 2, 2, 9, 1])]  # type: ignore[arg-type]
    parts = [list(p) for p in replay.read_slices(heads, 8)]
    assert [h for p in parts for h in p] == heads
    assert [[h.version for h in p] for p in parts] == [[5, 1, 30], [2, 2, 9], [1]]
    assert list(replay.read_slices([], 8)) == []


def test_a_rebuild_looks_up_no_rows_of_the_tables_it_emptied(app_on: TrialConduct,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: each chunk of a rebuild selected its subjects' rows (``subject IN`` the chunk's
    subjects, a statement text per chunk size) from tables the rebuild had just emptied; the driver's
    statement cache, and the work, grew with the log. Rows are the same without the lookups."""
    log_order = ProjectionStore(app_on, batch_size=LOG_ORDER)
    log_order.rebuild()
    expected = _tables(log_order)
    log_order.close()
    monkeypatch.setattr(replay, "CHUNK_EVENTS", 40)  # several chunks of different sizes
    by_stream = ProjectionStore(app_on, batch_size=BY_STREAM)
    by_stream.rebuild()  # tables made, rows there: the next rebuild resets them
    statements: list[str] = []
    sa.event.listen(by_stream.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: statements.append(statement))
    assert by_stream.rebuild()["events"] == by_stream.head()
    assert _tables(by_stream) == expected
    by_stream.close()
    lookups = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "pgf_view_" in s and " IN " in s.upper()]
    assert lookups == []
    assert len(statements) > 0
