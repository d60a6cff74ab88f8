"""The audit page's trail search from the trail's read model (:mod:`pgf_events.audit.trail_search`):
its count and newest rows are exactly those of every stream's trail rows filtered and sorted (the
oracle below reads the whole trail, records and monitoring, and filters it by its own test), now and
as of many times, with corrections and voids recorded long after what they change, for many
searches and page sizes, and as a site-scoped reader. The fixtures are those of the time-travel
tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.findings import model_of as audit_model_of
from pgf_events.audit.source import patient_streams
from pgf_events.audit.trail import changes_of, field_count, fields, row_counts, trail_rows
from pgf_events.audit.trail_monitoring import monitoring_trail_rows
from pgf_events.audit.trail_search import Search, trail_model_of
from pgf_events.projections.store import ProjectionStore
from pgf_events.store import parse_url
from pgf_events.web.audit import newest_trail
from tests.audit.keys import CliSigner
from tests.conftest import Pgf
from tests.projections.test_travel import _late_changes, _times
from tests.projections.test_travel import opened as opened  # noqa: PLC0414 - the fixture, shared

BLANK = {"user": "", "subject": "", "kind": "", "from": "", "to": "", "exception": ""}


def _every(app: Any, as_of: datetime | None) -> list[dict[str, Any]]:
    return [*trail_rows(app, as_of), *monitoring_trail_rows(app, as_of)]


def _oracle(app: Any, every: list[dict[str, Any]], search: Search, shown: int) -> tuple[int, list[dict[str, Any]]]:
    found = []
    for row in every:
        if app.site_scope is not None and not row["subject"]:
            continue
        stamp = datetime.fromisoformat(row["recorded_utc"].replace("Z", ""))
        if search.user and row["user"].lower() != search.user.lower():
            continue
        if search.subject and row["subject"] != search.subject.upper():
            continue
        if search.kind and search.kind.lower() not in (row["kind"].lower(), row["type"].lower()):
            continue
        if (search.start and stamp < search.start) or (search.end and stamp > search.end):
            continue
        found.append(row)
    found.sort(key=lambda r: r["recorded_utc"], reverse=True)
    return len(found), found[:shown]


def _searches(app: Any) -> list[Search]:
    stamps = sorted(datetime.fromisoformat(r["recorded_utc"].replace("Z", "")) for r in trail_rows(app))
    middle, late = stamps[len(stamps) // 3], stamps[-len(stamps) // 5]
    users = sorted({r["user"] for r in trail_rows(app)})
    return [Search(), Search(kind="lab"), Search(kind="correct"), Search(kind="Voided"), Search(kind="monitoring"),
            Search(kind="queryopened"), Search(kind="nothing"), Search(user=users[0].upper()), Search(user="nobody"),
            Search(subject="s002"), Search(subject="S004", kind="monitoring"),
            Search(start=middle), Search(end=middle), Search(start=middle, end=late, kind="lab"),
            Search(start=middle + timedelta(microseconds=1), end=late - timedelta(microseconds=1)),
            Search(start=datetime(2100, 1, 1)), Search(end=datetime(2000, 1, 1))]


def test_the_trail_search_is_the_whole_trail_filtered_and_sorted(opened: Any) -> None:
    pgf, app, store = opened
    _late_changes(pgf)
    model = trail_model_of(store)
    assert model.available()
    searches = _searches(app)
    subjects = audit_model_of(store).subjects(app.in_scope)
    for as_of in [None, *_times(app)[::5]]:
        every = _every(app, as_of)
        for search in searches:
            for shown in (1, 4, 25, 10**6):
                expected = _oracle(app, every, search, shown)
                assert model.search(app, subjects, as_of, search, shown) == expected, (as_of, search, shown)
    assert model.search(app, subjects, None, Search(), 3)[0] > 500  # the whole trail counted...
    assert model.streams_made <= 3  # ...and only the streams with the 3 newest rows made into rows


def test_the_page_search_keeps_to_the_viewer_sites(opened: Any, tmp_path: Path) -> None:
    pgf, app, store = opened
    _late_changes(pgf)
    pgf.ok("lock", "--reason", "interim analysis", *CliSigner(pgf, tmp_path, "dm.wu").args(), user="dm.wu")
    site_of = {subject: app.stream(subject)[0].record.site for subject in app.subjects()}
    times = [None, *_times(app)[::9]]
    for scope in (None, frozenset({site_of["S001"]})):
        app.site_scope = scope
        for as_of in times:
            every = _every(app, as_of)
            for filters in (BLANK, {**BLANK, "kind": "monitoring"}, {**BLANK, "kind": "Locked"},
                            {**BLANK, "subject": "S002"}, {**BLANK, "user": "nobody"}):
                expected = _oracle(app, every, Search.of(filters), 7)
                assert newest_trail(app, as_of, filters, store, 7) == expected, (scope, as_of, filters)
                assert newest_trail(app, as_of, filters, None, 7) == expected  # without read models
    app.site_scope = None
    assert newest_trail(app, None, {**BLANK, "kind": "locked"}, store)[0] == 1


def test_each_event_has_the_rows_the_model_counts(opened: Any) -> None:
    pgf, app, _ = opened
    _late_changes(pgf)
    pgf.ok("correct", "S002#1", "--set", "weight_kg=71", "--reason", "re-weighed")
    pgf.ok("correct", "S002#1", "--set", "weight_kg=72", "--reason", "re-weighed again")
    for _, events in patient_streams(app):
        assert row_counts(events) == [max(1, len(changes)) for _, _, _, _, changes in changes_of(events)]
        for event in events:
            record = getattr(event, "record", None)
            if record is not None:
                assert field_count(record) == sum(1 for v in fields(record).values() if v is not None)


def test_a_search_as_of_a_time_before_everything_finds_nothing(opened: Any) -> None:
    _, app, store = opened
    subjects = audit_model_of(store).subjects(app.in_scope)
    assert trail_model_of(store).search(app, subjects, datetime(2000, 1, 1, tzinfo=UTC), Search(), 5) == (0, [])


def test_an_encrypted_store_searches_the_same(pgf: Pgf, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sealed rows are keyed by a keyed hash of the subject: the search reads each row's own subject."""
    from click.testing import CliRunner

    from pgf_events.cli import cli

    key = CliRunner().invoke(cli, ["keygen"]).stdout.strip()
    monkeypatch.setenv("PGF_CIPHER_KEY", key)
    pgf.ok("demo", "--patients", "4", "--seed", "3")
    app = TrialConduct(parse_url(pgf.url, cipher_key=key))
    store = ProjectionStore(app)
    try:
        subjects = audit_model_of(store).subjects(app.in_scope)
        every = _every(app, None)
        for search in (Search(), Search(kind="lab"), Search(subject="S002")):
            expected = _oracle(app, every, search, 9)
            assert expected[0] > 0
            assert trail_model_of(store).search(app, subjects, None, search, 9) == expected
    finally:
        store.close()
        app.close()
