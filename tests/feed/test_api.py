"""The Python API: ChangeFeed snapshots, paging, filters, live following, encryption, rebuilds."""

from __future__ import annotations

import base64
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.review import review_id
from pgf_events.feed import STRIDE, Change, ChangeFeed, feed_position, split_position
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.store import changes as changes_table
from pgf_events.store import parse_url
from tests.feed.writer import interleaved
from tests.helpers import USER, enrolled


def _record_with_catch_ups(app: TrialConduct, feed: ChangeFeed, patients: int = 2) -> None:
    for n, command in enumerate(interleaved(patients, seed=5)):
        app.execute([command], user="writer")
        if n % 3 == 0:
            feed.catch_up()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChangeFeed]:
    url = f"sqlite:///{tmp_path_factory.mktemp('feed')}/trial.db"
    app = TrialConduct(parse_url(url))
    feed = ChangeFeed(app)
    _record_with_catch_ups(app, feed)
    yield feed
    feed.close()
    app.close()


def test_positions_encode_the_notification_and_the_projection() -> None:
    assert len(PROJECTIONS) <= STRIDE
    for n, name in enumerate(PROJECTIONS):
        assert split_position(feed_position(41, name)) == (41, n)
    assert feed_position(41, PROJECTIONS[-1]) < feed_position(42, PROJECTIONS[0])


def test_the_snapshot_holds_every_change_row_once_in_strictly_increasing_order(populated: ChangeFeed) -> None:
    seen = list(populated.changes())
    with populated.store.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(changes_table)).scalar_one()
    assert len(seen) == rows > 100
    assert all(a.position < b.position for a, b in itertools.pairwise(seen))
    assert populated.head() == seen[-1].position


def test_small_pages_give_the_same_feed(populated: ChangeFeed) -> None:
    small = ChangeFeed(populated.app, page_size=7)
    assert list(small.changes()) == list(populated.changes())


def test_after_and_projection_filter(populated: ChangeFeed) -> None:
    every = list(populated.changes())
    middle = every[len(every) // 2].position
    assert list(populated.changes(after=middle)) == [c for c in every if c.position > middle]
    assert list(populated.changes(projection="gvhd")) == [c for c in every if c.projection == "gvhd"]
    assert list(populated.changes(after=every[-1].position)) == []


def test_every_position_names_the_event_of_its_change(populated: ChangeFeed) -> None:
    app = populated.app
    notifications = {n.id: n for n in app.recorder.select_notifications(start=1, limit=100000)}
    for change in populated.changes():
        n = notifications[change.notification_id]
        if change.projection == "queries":  # a query action: the event is on the patient's review stream
            subject = change.data["subject"]
            assert change.event_ref == change.data["qid"] and change.event_ref.startswith(f"{subject}-Q")
            assert n.originator_id == review_id(app.patient_id(subject))
            assert n.topic == f"pgf_events.domain.review:Review.Query{change.data['action'].capitalize()}"
            assert change.subject == subject and change.recorded_at.endswith("Z")
            continue
        subject, version = change.event_ref.split("#")
        assert (n.originator_id, n.originator_version) == (app.patient_id(subject), int(version))
        assert change.subject == change.data["subject"] == subject
        assert change.recorded_at.endswith("Z") and change.protocol_version == app.protocol.version


def test_a_change_round_trips_through_its_json_line(populated: ChangeFeed) -> None:
    import json

    change = next(populated.changes())
    doc = json.loads(change.to_line())
    assert list(doc) == ["position", "projection", "subject", "kind", "event_ref", "recorded_at",
                         "protocol_version", "data"]
    assert Change.from_json(doc) == change


def test_bad_arguments_are_rejected(populated: ChangeFeed) -> None:
    with pytest.raises(ValidationError, match="unknown projection"):
        list(populated.changes(projection="adverse"))
    with pytest.raises(ValidationError, match="whole number"):
        list(populated.changes(after=-5))


def test_follow_yields_new_changes_live_and_stops_on_request(tmp_path: Path) -> None:
    app = TrialConduct(parse_url(f"sqlite:///{tmp_path}/trial.db"))
    feed = ChangeFeed(app, interval=0.05)
    stop, got, ready = threading.Event(), [], threading.Event()

    def consume() -> None:
        for change in feed.follow(projection="eligibility", stop=stop):
            got.append(change)
            ready.set()

    enrolled(app, "S001")
    thread = threading.Thread(target=consume)
    thread.start()
    try:
        assert ready.wait(30)
        app.record("withdraw", "S001", {"date": "2025-03-01", "reason": "moved away"}, user=USER)
        deadline = threading.Event()
        for _ in range(600):
            if any(c.data["withdrawn"] for c in got):
                break
            deadline.wait(0.05)
        assert any(c.data["withdrawn"] for c in got)
    finally:
        stop.set()
        thread.join(timeout=10)
        feed.close()
        app.close()
    assert not thread.is_alive()
    assert [c.position for c in got] == sorted({c.position for c in got})


def test_an_encrypted_store_hands_out_clear_subjects_and_references(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    app = TrialConduct(parse_url(f"sqlite:///{tmp_path}/secret.db", cipher_key=key))
    try:
        enrolled(app, "S007")
        feed = ChangeFeed(app)
        seen = list(feed.changes())
        assert seen and {c.subject for c in seen} == {"S007"}
        assert all(c.event_ref.startswith("S007#") and c.data["subject"] == "S007" for c in seen)
        with feed.store.engine.connect() as conn:
            stored = conn.execute(sa.select(changes_table.c.subject, changes_table.c.event_ref)).all()
        assert all("S007" not in row.subject and "S007" not in row.event_ref for row in stored)
        feed.close()
    finally:
        app.close()


def test_a_rebuild_rewrites_the_history_coarser_but_keeps_the_latest_state(tmp_path: Path) -> None:
    """What followers must know (README, "Following changes"): after a rebuild a subject's last change
    sits at its last event of the rebuild batch, so it can re-state unchanged values at a higher
    position; positions still name that subject's events, and the latest values are the same."""
    app = TrialConduct(parse_url(f"sqlite:///{tmp_path}/trial.db"))
    feed = ChangeFeed(app)
    try:
        _record_with_catch_ups(app, feed, patients=1)
        before = list(feed.changes())
        feed.store.rebuild()
        after = list(feed.changes())
        last_before = {(c.projection, c.subject): c for c in before}
        last_after = {(c.projection, c.subject): c for c in after}
        assert {k: c.data for k, c in last_after.items()} == {k: c.data for k, c in last_before.items()}
        assert all(last_after[k].position >= last_before[k].position for k in last_before)
        assert len(after) < len(before)
        notifications = {n.id: n for n in app.recorder.select_notifications(start=1, limit=100000)}
        queries = [c for c in before if c.projection == "queries"]  # one per query action: not rebuilt
        assert [c for c in after if c.projection == "queries"] == queries
        for change in after:
            if change.projection == "queries":
                continue
            n = notifications[change.notification_id]
            assert (n.originator_id, n.originator_version) == (app.patient_id(change.subject),
                                                               int(change.event_ref.split("#")[1]))
    finally:
        feed.close()
        app.close()


def test_the_feed_refuses_more_projections_than_a_position_has_room_for() -> None:
    from pgf_events.feed.change import STRIDE, FeedLayoutError, check_stride
    from pgf_events.projections.slices import PROJECTIONS

    check_stride(PROJECTIONS)
    with pytest.raises(FeedLayoutError, match="STRIDE"):
        check_stride(tuple(f"p{n}" for n in range(STRIDE + 1)))
