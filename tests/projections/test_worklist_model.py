"""The worklist's read model, the audit page's per-patient findings and the shared time-travel cohort
give exactly what the commands give (``pgf due``, ``pgf audit exceptions``, ``pgf report
deviations``, ``pgf report --as-of/--cutoff``), on the demo and after new events, corrections, voids,
SDV, queries and a signature; and a rebuild of the worklist model reproduces the live one row for row."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.audit.exceptions import KINDS, exception_rows
from pgf_events.audit.findings import AuditModel
from pgf_events.cli._output import to_json
from pgf_events.projections.deviations import deviation_rows
from pgf_events.projections.queries import cohort_report
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.tables import worklist_rows
from pgf_events.projections.travel import cohort_at, derive_cohort
from pgf_events.projections.worklist import end_of, sort_items
from pgf_events.projections.worklist_model import WorklistModel
from pgf_events.store import parse_url
from tests.audit.keys import CliSigner
from tests.conftest import Pgf

DAYS = (date(2025, 1, 15), date(2025, 4, 2), date(2025, 9, 30), date(2027, 1, 1))


@pytest.fixture
def demo(pgf: Pgf) -> Pgf:
    pgf.ok("demo", "--patients", "12", "--seed", "5")
    return pgf


@pytest.fixture
def opened(demo: Pgf) -> Iterator[tuple[TrialConduct, ProjectionStore]]:
    app = TrialConduct(parse_url(demo.url, cipher_key=""))
    store = ProjectionStore(app)
    try:
        yield app, store
    finally:
        store.close()
        app.close()


def _cli_due(pgf: Pgf, day: date) -> list[dict[str, Any]]:
    return json.loads(pgf.ok("due", "--json", "--on", day.isoformat()).stdout)["items"]  # type: ignore[no-any-return]


def _model_due(model: WorklistModel, day: date) -> list[dict[str, Any]]:
    model.catch_up()
    return json.loads(to_json(sort_items(model.items(day, end_of(day)))))  # type: ignore[no-any-return]


def _rows(store: ProjectionStore) -> dict[tuple[str, str], tuple[Any, int, int]]:
    with store.engine.connect() as conn:
        return {(r.subject, r.kind): (r.data, r.version, r.position) for r in conn.execute(sa.select(worklist_rows))}


def _changes(pgf: Pgf, folder: Path) -> Iterator[str]:
    """New events of every kind the worklist reads, one step at a time (yields what was done)."""
    subject = "S003"
    pgf.ok("record", "lab", subject, "--date", "2025-04-01", "--anc", "0.3", "--plt", "15", "--hb", "70")
    yield "lab"
    history = json.loads(pgf.ok("history", subject, "--json").stdout)
    lab = next(e["ref"] for e in reversed(history["events"]) if e.get("kind") == "lab")
    pgf.ok("correct", lab, "--set", "anc=0.6", "--reason", "transcription")
    yield "correction"
    pgf.ok("record", "ae", subject, "--onset", "2025-04-01", "--term", "Sepsis", "--grade", "3",
           "--serious", "hospitalisation", "--related", "possible", "--aware", "2025-04-01T10:00")
    yield "serious AE"
    qid = pgf.ok("query", "open", lab, "--text", "is the ANC right?").stdout.strip()
    yield "query opened"
    pgf.ok("query", "answer", qid, "--text", "yes")
    yield "query answered"
    pgf.ok("query", "close", qid)
    yield "query closed"
    pgf.ok("sdv", lab)
    yield "SDV"
    infusion = next((e["ref"] for e in history["events"] if e.get("kind") == "infusion"), None)
    if infusion is not None:
        pgf.ok("void", infusion, "--reason", "wrong patient")
        yield "void"
    CliSigner(pgf, folder, "dr.li").sign("S002", "--meaning", "review")
    yield "signature"


def test_the_worklist_model_answers_as_pgf_due_and_a_rebuild_gives_the_live_rows(demo: Pgf, opened: Any,
                                                                                 tmp_path: Path) -> None:
    _, store = opened
    live = WorklistModel(store)
    for day in DAYS:
        assert _model_due(live, day) == _cli_due(demo, day), day
    for step in _changes(demo, tmp_path):
        for day in (DAYS[1], DAYS[3]):
            assert _model_due(live, day) == _cli_due(demo, day), (step, day)
    assert live.full_reads == 1  # every change was read incrementally
    rows = _rows(store)
    assert {kind for _, kind in rows} == {"patient", "queries"}
    rebuilt = WorklistModel(store)
    rebuilt.rebuild()
    assert _rows(store) == rows  # the same data, versions and positions as the live catch-up wrote
    assert _model_due(rebuilt, DAYS[1]) == _cli_due(demo, DAYS[1])


def test_the_audit_findings_are_the_commands_after_each_change(demo: Pgf, opened: Any, tmp_path: Path) -> None:
    app, store = opened
    model = AuditModel(store)
    now = app.clock()
    for step in ["demo", *_changes(demo, tmp_path)]:
        exceptions, deviations = model.tables(app.in_scope, now)
        expected = exception_rows(app)
        assert list(exceptions) == expected and len(exceptions) == len(expected), step
        assert exceptions[:5] == expected[:5] and exceptions.counts == Counter(r["kind"] for r in expected), step
        late = model.tables(app.in_scope, now, ("late_entry", "new_user_at_site"))[0]
        assert list(late) == exception_rows(app, None, ("late_entry", "new_user_at_site")), step
        assert deviations == deviation_rows(app), step
    assert model.streams_read < 12 + 2 * 9  # each step re-read only the streams it touched


def test_the_time_travel_cohort_is_what_the_reports_derive(demo: Pgf, opened: Any) -> None:
    app, _ = opened
    moments = [(None, date(2025, 3, 31)), (datetime(2030, 1, 1, tzinfo=UTC), None), (app.clock(), date(2024, 9, 30))]
    for as_of, cutoff in moments:
        cohort = derive_cohort(app, as_of, cutoff)
        for name in PROJECTIONS:
            expected = cohort_report(app, name, as_of=as_of, cutoff=cutoff)["rows"]
            assert [cohort_report_row(name, s) for s in cohort.slices[name]] == expected, (name, as_of, cutoff)
    assert cohort_at(app, None, date(2025, 3, 31)) is cohort_at(app, None, date(2025, 3, 31))  # kept per head
    first = cohort_at(app, None, date(2025, 3, 31))
    demo.ok("record", "lab", "S003", "--date", "2025-04-01", "--anc", "0.3", "--plt", "15", "--hb", "70")
    assert cohort_at(app, None, date(2025, 3, 31)) is not first  # a new head: derived again


def cohort_report_row(name: str, data: dict[str, Any]) -> dict[str, Any]:
    from pgf_events.projections.sections import SECTIONS

    return SECTIONS[name].row(data)  # type: ignore[no-any-return]


def test_time_travel_pages_read_what_the_streams_say(demo: Pgf, opened: Any) -> None:
    """The worklist and the audit tables at an as-of and a cut-off: as the commands' way of reading
    (each stream folded as of then; exceptions and deviations as of then), from the shared cohort."""
    from pgf_events.projections.queries import fold_as_of
    from pgf_events.projections.signatures import signatures
    from pgf_events.projections.travel import known_at
    from pgf_events.projections.worklist import worklist
    from pgf_events.web.audit import _travelled
    from pgf_events.web.core import TimeTravel
    from pgf_events.web.readers import FAR, planning_day, review_as_of, worklist_items

    app, _ = opened
    demo.ok("query", "open", "S003#1", "--text", "birth date?")
    middle = app.clock()
    demo.ok("query", "open", "S004#1", "--text", "weight?")
    head = app.recorder.max_notification_id()
    halfway = app.mapper.to_domain_event(app.recorder.select_notifications(start=head // 2, limit=1)[0]).timestamp
    for when in (TimeTravel(as_of=middle), TimeTravel(cutoff=date(2025, 3, 31)), TimeTravel(middle, date(2024, 9, 30)),
                 TimeTravel(as_of=halfway)):  # half the log recorded: half the rows
        day, at = planning_day(when, app.clock())
        expected: list[dict[str, Any]] = []
        for subject in app.subjects():  # the way the page read it before the shared cohort
            events = app.stream(subject)
            patient, recorded = fold_as_of(events, when.as_of or FAR)
            if patient is not None:
                signed = any(s["valid"] for s in signatures(events[: patient.version]))
                expected += worklist(patient, review_as_of(app, subject, when.as_of), app.protocol, day, at,
                                     recorded, signed)
        assert worklist_items(app, when) == (day, sort_items(expected)), when
        if when.as_of is not None:
            from pgf_events.projections.deviations import deviation_report
            for kinds in (("late_entry", "new_user_at_site"), KINDS):
                for store in (None, opened[1]):  # from the streams, and from the audit model's kept rows
                    found = _travelled(app, when.as_of, when.cutoff, kinds, store)
                    assert list(found["exceptions"]) == exception_rows(app, when.as_of, kinds), (kinds, store)
                    assert found["deviations"] == deviation_report(app, as_of=when.as_of, cutoff=when.cutoff)["rows"]
    assert known_at(app, middle) == derive_cohort(app, middle, date(2024, 9, 30)).known  # the cut-off does not matter
