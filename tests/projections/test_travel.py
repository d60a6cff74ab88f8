"""Time travel from the read models (:mod:`pgf_events.projections.travel`): the cohort and the
worklist's inputs as of many times, read from the read models for the patients whose streams were
whole by then, are exactly what deriving every patient from the log gives (the oracle: the same
function without read models), with corrections and voids recorded long after the events they
change, and with a cut-off. The same for the audit page's exceptions and deviation log
(:meth:`pgf_events.audit.findings.AuditModel.findings_as_of`), against the commands' reading of
every stream as of then."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.exceptions import KINDS, exception_rows
from pgf_events.audit.findings import model_of as audit_model_of
from pgf_events.audit.trail import trail_rows
from pgf_events.audit.trail_monitoring import monitoring_trail_rows
from pgf_events.projections import cutoff_rows, travel
from pgf_events.projections.deviations import deviation_report
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.travel import derive_cohort
from pgf_events.projections.worklist_model import model_of
from pgf_events.store import parse_url
from pgf_events.web.audit import _travelled, trail
from pgf_events.web.core import TimeTravel
from pgf_events.web.readers import worklist_items
from tests.conftest import Pgf
from tests.pgcluster import OWNER, Cluster


def app_path(pgf: Pgf) -> str:
    return pgf.url.removeprefix("sqlite:///")


@pytest.fixture
def opened(pgf: Pgf) -> Iterator[tuple[Pgf, TrialConduct, ProjectionStore]]:
    pgf.ok("demo", "--patients", "10", "--seed", "3")
    app = TrialConduct(parse_url(pgf.url, cipher_key=""))
    store = ProjectionStore(app)
    try:
        yield pgf, app, store
    finally:
        store.close()
        app.close()


def _late_changes(pgf: Pgf) -> None:
    """Corrections and voids of early events, a lab and a query, recorded after the whole demo."""
    for subject in ("S002", "S005"):
        events = json.loads(pgf.ok("history", subject, "--json").stdout)["events"]
        labs = [e["ref"] for e in events if e.get("kind") == "lab"]
        pgf.ok("correct", labs[0], "--set", "plt=9", "--reason", "transcription")
        pgf.ok("void", labs[1], "--reason", "duplicate")
        infusion = next((e["ref"] for e in reversed(events) if e.get("kind") == "infusion"), None)
        if infusion is not None:
            pgf.ok("void", infusion, "--reason", "wrong patient")
    pgf.ok("record", "lab", "S003", "--date", "2025-04-01", "--anc", "0.3", "--plt", "15", "--hb", "70")
    pgf.ok("query", "open", "S004#1", "--text", "weight?")


def _times(app: TrialConduct) -> list[datetime]:
    """Every 7th recorded time, each also a microsecond before, and before and after everything."""
    head = app.recorder.max_notification_id() or 0
    stamps = [app.mapper.to_domain_event(n).timestamp
              for n in app.recorder.select_notifications(start=1, limit=head)]
    picked = stamps[::7] + stamps[-6:]
    return ([stamps[0] - timedelta(seconds=1)] + [t - timedelta(microseconds=1) for t in picked] + picked
            + [datetime(2100, 1, 1, tzinfo=UTC)])


def _same(found: travel.CohortAt, expected: travel.CohortAt) -> None:
    assert found.slices == expected.slices
    assert (found.known is None) == (expected.known is None)
    if found.known is not None and expected.known is not None:
        assert found.known.inputs == expected.known.inputs
        assert found.known.queries == expected.known.queries


def test_the_read_models_answer_as_the_log_at_every_time(opened: Any) -> None:
    pgf, app, store = opened
    _late_changes(pgf)
    times = _times(app)
    assert len(times) > 40
    assert travel._kept_rows(app, store, slices=True, known=True) is not None  # noqa: SLF001 - the rows are read
    read_from_rows = 0
    for as_of in times:
        found = derive_cohort(app, as_of, None, store=store)
        _same(found, derive_cohort(app, as_of, None))
        read_from_rows += len(found.slices["eligibility"])
    assert read_from_rows > 0
    for cutoff in (date(2024, 9, 30), date(2025, 3, 31)):  # a cut-off: derived, the worklist's part read
        for as_of in (None, times[len(times) // 2], times[-2]):
            _same(derive_cohort(app, as_of, cutoff, store=store), derive_cohort(app, as_of, cutoff))


def test_rows_that_lag_are_derived_and_old_rows_are_not_used(opened: Any) -> None:
    _, app, store = opened
    derive_cohort(app, None, None, store=store)  # read models caught up
    model = model_of(store)
    rows = model.rows()
    stale = next(k for k in rows if k[1] == "patient")
    version, data = rows[stale]
    rows[stale] = (version, {**data, "recorded": {**data["recorded"], "last": "1999-01-01T00:00:00+00:00"}})
    as_of = datetime(2100, 1, 1, tzinfo=UTC)
    # A patient's projection rows at another version than its worklist row: derived from the log.
    snapshot_rows = travel.snapshot_of(store)._rows["dosing"]  # noqa: SLF001 - made to lag on purpose
    key = next(iter(snapshot_rows))
    snapshot_rows[key] = (snapshot_rows[key][0] - 1, snapshot_rows[key][1])
    try:
        kept = travel._kept_rows(app, store, slices=True, known=True)  # noqa: SLF001
        assert kept is not None and sum(not row.whole for row in kept) == 1
    finally:
        rows[stale] = (version, data)
    _same(derive_cohort(app, as_of, None, store=store), derive_cohort(app, as_of, None))
    rows[stale] = (version, {k: v for k, v in data.items() if k != "recorded"})  # written before this change
    try:
        assert travel._kept_rows(app, store, slices=True, known=True) is None  # noqa: SLF001
    finally:
        rows[stale] = (version, data)


def test_the_worklist_page_reads_the_same_with_and_without_read_models(opened: Any) -> None:
    pgf, app, store = opened
    _late_changes(pgf)
    middle = _times(app)[len(_times(app)) // 2]
    for when in (TimeTravel(as_of=middle), TimeTravel(cutoff=date(2025, 3, 31)), TimeTravel(middle, date(2024, 9, 30))):
        travel.forget()
        with_rows = worklist_items(app, when, store)
        travel.forget()
        assert with_rows == worklist_items(app, when), when


def test_a_declared_cut_off_answers_from_its_rows_as_the_log(opened: Any) -> None:
    """``pgf projections cutoff DATE``: the rows kept at that cut-off answer time travel and ``pgf report
    --cutoff`` exactly as deriving every patient does, after later changes too (caught up on read)."""
    pgf, app, store = opened
    declared = date(2025, 3, 31)
    undeclared = date(2024, 9, 30)
    before = {name: pgf.ok("report", name, "--cutoff", str(declared), "--json").stdout
              for name in ("endpoints", "survival")}
    pgf.ok("projections", "cutoff", str(declared))
    assert [c["cutoff"] for c in json.loads(pgf.ok("projections", "cutoff", "--json").stdout)["cutoffs"]] == [
        str(declared)]
    for name, text in before.items():  # the same report, now read from the kept rows
        after = json.loads(pgf.ok("report", name, "--cutoff", str(declared), "--json").stdout)
        assert after.pop("read_models_verified") is None  # never verified yet: said so
        assert after == json.loads(text)
    _late_changes(pgf)  # recorded after the declaration: the rows follow the log
    kept = cutoff_rows.rows_of(store, declared)
    assert kept is not None and {kind for _, kind in kept} == {cutoff_rows.KIND}
    assert sum(data["slices"] is None for _, data in kept.values()) > 0  # registered after the cut-off: left out
    assert cutoff_rows.rows_of(store, undeclared) is None
    times = _times(app)
    for cutoff in (declared, undeclared):
        for as_of in (None, times[len(times) // 3], times[len(times) // 2], times[-2]):
            _same(derive_cohort(app, as_of, cutoff, store=store), derive_cohort(app, as_of, cutoff))
    _same(derive_cohort(app, None, declared, known=False, store=store), derive_cohort(app, None, declared, known=False))


def test_cut_off_rows_are_verified_rebuilt_and_dropped(opened: Any) -> None:
    pgf, _, _ = opened
    pgf.ok("projections", "cutoff", "2025-03-31")
    pgf.ok("projections", "verify")
    checked = json.loads(pgf.ok("report", "endpoints", "--cutoff", "2025-03-31", "--json").stdout)
    assert checked["read_models_verified"]["ok"] is True
    table = "pgf_view_cutoff_20250331"
    with sqlite3.connect(app_path(pgf)) as db:  # an attacker with file access edits a kept row
        data = json.loads(db.execute(f"select data from {table} where subject = 'S002'").fetchone()[0])
        data["slices"]["endpoints"]["cutoff"] = "2026-01-01"
        db.execute(f"update {table} set data = ? where subject = 'S002'", (json.dumps(data),))
    differs = pgf("projections", "verify")  # exit 1, nothing repaired (it records its own result)
    assert differs.exit_code == 1 and "cutoff_20250331" in differs.stderr and "S002" in differs.stderr, differs.stderr
    assert pgf("projections", "verify").exit_code == 1
    pgf.ok("projections", "rebuild")
    pgf.ok("projections", "verify")
    dropped = pgf.ok("projections", "cutoff", "2025-03-31", "--drop")
    assert "stopped keeping rows at the cut-off 2025-03-31" in dropped.stdout
    assert "no cut-off is kept" in pgf.ok("projections", "cutoff").stdout
    pgf.rejected("projections", "cutoff", "2025-03-31", "--drop", contains="no rows are kept at the cut-off 2025-03-31")
    pgf.rejected("projections", "cutoff", "2025-02-30", contains="not a real calendar date")
    pgf.rejected("projections", "cutoff", "--drop", contains="--drop needs the DATE", code=2)
    with sqlite3.connect(app_path(pgf)) as db:
        assert not db.execute("select name from sqlite_master where name like 'pgf_view_cutoff%'").fetchall()


@pytest.mark.postgres
def test_a_cut_off_declared_by_the_owner_is_read_by_the_other_logins(pg_url: str) -> None:
    """PostgreSQL: only the store's owner may create the rows' table (a coordinator is told so, nothing
    written); once declared, a coordinator's report reads them, as the derived report."""
    coordinator, owner = Pgf(pg_url), Pgf(pg_url, user=OWNER)
    coordinator.ok("demo", "--patients", "6", "--seed", "5")
    coordinator.rejected("projections", "cutoff", "2025-03-31", contains="cannot be kept here")
    owner.ok("projections", "cutoff", "2025-03-31")
    coordinator.ok("record", "lab", "S002", "--date", "2025-03-01", "--anc", "0.4", "--plt", "12", "--hb", "71")
    read = json.loads(coordinator.ok("report", "endpoints", "--cutoff", "2025-03-31", "--json").stdout)
    assert "read_models_verified" in read
    app = TrialConduct(parse_url(Cluster.login_url(pg_url, OWNER), cipher_key=""))
    store = ProjectionStore(app)
    try:
        kept = cutoff_rows.rows_of(store, date(2025, 3, 31))
        assert kept is not None and len(kept) >= 6
        latest = json.loads(coordinator.ok("history", "S002", "--json").stdout)["events"][-1]["ref"]
        assert f"S002#{kept[('S002', cutoff_rows.KIND)][0]}" == latest  # the rows followed the new lab
        _same(derive_cohort(app, None, date(2025, 3, 31), store=store), derive_cohort(app, None, date(2025, 3, 31)))
    finally:
        store.close()
        app.close()
    now = json.loads(coordinator.ok("report", "endpoints", "--cutoff", "2025-03-31", "--as-of", "2100-01-01",
                                    "--json").stdout)  # derived from the log
    assert (read["rows"], read["summary"]) == (now["rows"], now["summary"])


def test_the_audit_tables_as_of_read_the_kept_rows_as_the_log_at_every_time(opened: Any) -> None:
    """The audit page at ``as_of``: the rows of the streams whole by then from the audit model, the
    straddling streams derived, the others left out; the same rows as reading every stream as of then
    (``pgf audit exceptions`` and ``pgf report deviations --as-of``), in the same order."""
    pgf, app, store = opened
    _late_changes(pgf)
    times = _times(app)
    model = audit_model_of(store)
    subjects = len(app.subjects())
    derived = 0
    for as_of in times:
        for kinds in (KINDS, ("late_entry", "new_user_at_site")):
            before = model.streams_derived
            found = _travelled(app, as_of, None, kinds, store)
            derived += model.streams_derived - before
            assert list(found["exceptions"]) == exception_rows(app, as_of, kinds), (as_of, kinds)
            assert found["deviations"] == deviation_report(app, as_of=as_of)["rows"], as_of
            assert _travelled(app, as_of, None, kinds) == {**found, "exceptions": list(found["exceptions"])}
    assert any(deviation_report(app, as_of=t)["rows"] for t in times)
    assert 0 < derived < len(times) * 2 * subjects / 4  # most streams read from the rows, some derived
    for cutoff in (date(2024, 9, 30), date(2025, 3, 31)):
        for as_of in (times[len(times) // 2], times[-2]):
            found = _travelled(app, as_of, cutoff, KINDS, store)
            assert found["deviations"] == deviation_report(app, as_of=as_of, cutoff=cutoff)["rows"]
    sites = sorted({r["site"] for r in deviation_report(app)["rows"]})
    assert len(sites) > 1
    app.site_scope = frozenset(sites[:1])  # a site-scoped reader who keeps the read models (SQLite)
    for as_of in times[::5]:
        found = _travelled(app, as_of, None, KINDS, store)
        assert list(found["exceptions"]) == exception_rows(app, as_of), as_of
        assert found["deviations"] == deviation_report(app, as_of=as_of)["rows"], as_of


def test_audit_rows_without_recorded_times_are_derived(opened: Any) -> None:
    """A row without its recorded times (or a patient without a row) counts as straddling: derived."""
    pgf, app, store = opened
    _late_changes(pgf)
    model = audit_model_of(store)
    model.refresh()
    key = next(iter(model._patients))  # noqa: SLF001 - made to lack its times on purpose
    version, found = model._patients[key]  # noqa: SLF001
    model._patients[key] = (version, attrs.evolve(found, span=None))  # noqa: SLF001
    for as_of in _times(app)[::4]:
        assert _travelled(app, as_of, None, KINDS, store)["deviations"] == deviation_report(app, as_of=as_of)["rows"]
    before = model.streams_derived
    found = _travelled(app, datetime(2100, 1, 1, tzinfo=UTC), None, KINDS, store)  # every other stream whole
    assert model.streams_derived == before + 1
    assert found["deviations"] == deviation_report(app, as_of=datetime(2100, 1, 1, tzinfo=UTC))["rows"]


def test_the_trail_search_by_patient_reads_that_patient_as_the_whole_trail_says(opened: Any) -> None:
    """The audit page's trail search for one patient (now and as of many times) reads only that
    patient's streams: the rows of the whole trail (records and monitoring) that are that patient's."""
    pgf, app, _ = opened
    _late_changes(pgf)
    blank = {"user": "", "subject": "", "kind": "", "from": "", "to": "", "exception": ""}
    for as_of in [None, *_times(app)[::6]]:
        every = [*trail_rows(app, as_of), *monitoring_trail_rows(app, as_of)]
        assert list(trail(app, as_of, blank)) == every
        for subject in [*app.subjects(), "s004", "S999", ""]:
            expected = [r for r in every if r["subject"] == subject.upper()] if subject else every
            assert list(trail(app, as_of, {**blank, "subject": subject})) == expected, (as_of, subject)
    assert any(r["kind"] == "monitoring" and r["subject"] == "S004" for r in every)
    site_of = {subject: app.stream(subject)[0].record.site for subject in app.subjects()}
    app.site_scope = frozenset({site_of["S001"]})  # a site-scoped reader: another site's patient is not found
    other = next(subject for subject, site in site_of.items() if site != site_of["S001"])
    assert list(trail(app, None, {**blank, "subject": other})) == []
    assert list(trail(app, None, {**blank, "subject": "S001"})) == [
        r for r in trail(app, None, blank) if r["subject"] == "S001"] != []


def test_a_process_keeps_the_rows_of_its_last_cut_offs_only(opened: Any) -> None:
    """Each declared cut-off's rows are the size of the read models': a process keeps the last
    ``KEPT`` asked for in memory and reads an older one from its table again, with the same rows."""
    pgf, _, store = opened
    days = [date(2024, 9, 30), date(2024, 12, 31), date(2025, 3, 31)]
    for day in days:
        pgf.ok("projections", "cutoff", str(day))
    first = cutoff_rows.rows_of(store, days[0])
    for day in days[1:]:
        assert cutoff_rows.rows_of(store, day) is not None
    assert len(cutoff_rows._KEPT) == cutoff_rows.KEPT  # noqa: SLF001
    again = cutoff_rows.rows_of(store, days[0])
    assert again is not first and again == first  # read from the table again: the same rows
