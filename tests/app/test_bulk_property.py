"""The bulk import (:mod:`pgf_events.bulk`) against the unit of work, on random files of valid and
invalid lines: the same lines accepted, the same errors, and, when the file is accepted, the same
stored bytes: every event row (stream, version, topic, payload, in log order) and every chain link.
The bulk path runs both ways it can write: in the importing process, and with a writer process
holding the transaction (:mod:`pgf_events.audit.bulk_writer`, used when two cores are usable).

Both paths start from copies of one SQLite store (patients registered, enrolled, dead, with and
without history) and run with the same clock and the same sequence of event timestamps.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import eventsourcing.domain
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pgf_events.application import BatchRejected, Command, TrialConduct
from pgf_events.audit.recorders_sqlite import ChainedSQLiteRecorder
from pgf_events.bulk import import_stream
from pgf_events.bulk_plan import Holding
from pgf_events.cli.batch import Scan, command_line, import_scanned
from pgf_events.cli.import_digest import command_digest
from pgf_events.domain.errors import PgfError
from pgf_events.store import parse_url
from tests.conftest import NOW

USER = "coordinator1"
CRITERIA = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{i}": "no" for i in range(1, 9)}}


def _ticks(monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
    """Event timestamps: ``start`` + 1 µs per event, the same sequence for both paths."""
    counter = itertools.count()
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo",
                        lambda: start + timedelta(microseconds=next(counter)))


def _base(path: Path) -> None:
    app = TrialConduct(parse_url(f"sqlite:///{path}", cipher_key=""), clock=lambda: NOW)
    for subject in ("S1", "S2", "S3"):
        app.record("register", subject, {"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61,
                                         "transplant_date": "2025-01-10", "date": "2025-02-15"}, user=USER)
    for subject in ("S1", "S3"):
        app.record("consent", subject, {"date": "2025-02-18"}, user=USER)
        app.record("screen", subject, {"date": "2025-02-20", "kps": 80, "expected_survival_months": 12,
                                       "criterion": CRITERIA}, user=USER)
        app.record("enrol", subject, {"date": "2025-02-24"}, user=USER)
        app.record("infusion", subject, {"date": "2025-02-25", "cells": 6.1e7, "weight_kg": 61}, user=USER)
    app.record("death", "S3", {"date": "2025-04-01", "cause": "relapse"}, user=USER)


subject = st.sampled_from(["S1", "S2", "S3", "S9", "s1", "bad code!"])
day = st.sampled_from(["2025-02-10", "2025-03-01", "2025-03-20", "2025-04-10", "2025-06-01", "2030-01-01",
                       "1970-01-01", "not a date"])
lab = st.builds(lambda s, d, anc, dev, src: Command("record", subject=s, kind="lab", fields={
    "date": d, "anc": anc, "plt": 20}, source=src, deviation=dev),
    subject, day, st.sampled_from([0.4, 45.0, -1, "x", None]), st.sampled_from([None, None, "why"]),
    st.sampled_from([None, "LIS", "ward"]))
vitals = st.builds(lambda s, d: Command("record", subject=s, kind="vitals", fields={"date": d, "weight_kg": 60}),
                   subject, day)
ae = st.builds(lambda s, d, serious: Command("record", subject=s, kind="ae", fields={
    "onset": d, "term": "fever", "grade": 3, **({"serious": ["hospitalisation"]} if serious else {})}),
    subject, day, st.booleans())
infusion = st.builds(lambda s, d: Command("record", subject=s, kind="infusion", fields={
    "date": d, "cells": 6.1e7, "weight_kg": 61}), subject, day)
register = st.builds(lambda s: Command("record", subject=s, kind="register", fields={
    "site": "PKU", "birth_date": "1980-02-03", "sex": "M", "weight_kg": 70, "transplant_date": "2025-01-10",
    "date": "2025-02-15"}), st.sampled_from(["S7", "S8", "S1"]))
keyed = st.builds(lambda s, k: Command("record", subject=s, kind="lab", fields={"date": "2025-03-02", "anc": 1.0},
                                       key=k), subject, st.sampled_from(["k1", "k2"]))
change = st.builds(lambda action, s, v, d, dev: Command(
    action, ref=f"{s}#{v}", fields={"date": d} if action == "correct" else {}, reason="typo", deviation=dev),
    st.sampled_from(["correct", "void"]), st.sampled_from(["S1", "S2", "S3"]), st.integers(1, 9), day,
    st.sampled_from([None, None, "acknowledged"]))
good_lab = st.builds(lambda s, d, anc: Command("record", subject=s, kind="lab", fields={"date": d, "anc": anc}),
                     st.sampled_from(["S1", "S2", "s2"]), st.sampled_from(["2025-03-01", "2025-03-20"]),
                     st.sampled_from([0.4, 45.0]))
good = st.one_of(good_lab, good_lab, good_lab, st.sampled_from([
    Command("void", ref="S1#5", reason="wrong patient"),
    Command("correct", ref="S1#2", fields={"date": "2025-02-17"}, reason="typo", deviation="the site confirmed"),
    Command("record", subject="S2", kind="ae", fields={"onset": "2025-03-02", "term": "rash", "grade": 3,
                                                       "serious": ["hospitalisation"]}),
    Command("record", subject="S3", kind="vitals", fields={"date": "2025-03-03", "weight_kg": 60}),
    Command("record", subject="S7", kind="register", fields={
        "site": "PKU", "birth_date": "1980-02-03", "sex": "M", "weight_kg": 70, "transplant_date": "2025-01-10",
        "date": "2025-02-15"}),
]))
any_line = st.one_of(lab, vitals, ae, infusion, register, keyed, change)
history_free_line = st.one_of(lab, vitals, ae, good_lab, good_lab)  # a file of these is read once
lines = st.one_of(st.lists(any_line, min_size=1, max_size=14),
                  st.lists(history_free_line, min_size=1, max_size=14),
                  st.lists(good, min_size=2, max_size=14),
                  st.lists(st.one_of(good, good, good, any_line), min_size=2, max_size=14))


WRITERS = {"in process": False, "writer process": True}


@pytest.fixture(params=list(WRITERS))
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the bulk path writes (both are compared with the unit of work)."""
    monkeypatch.setattr(ChainedSQLiteRecorder, "bulk_writer_process", WRITERS[request.param])
    return str(request.param)


def _run(app: TrialConduct, commands: list[Command], bulk: bool | str) -> Any:
    """``bulk``: False (the unit of work), True (the bulk path, planned as a file's first pass plans it)
    or "file" (the commands as a JSON Lines file, read as ``pgf import`` reads it: a file of history-free
    records in one pass, its digest computed as it goes)."""
    digest = command_digest(commands)
    try:
        if bulk == "file":
            path = Path(app.recorder.file_path()).with_suffix("") / "f.jsonl"  # type: ignore[attr-defined]
            path.parent.mkdir()
            path.write_text("".join(command_line(c) + "\n" for c in commands), encoding="utf-8")
            with path.open("rb") as file:
                scan = Scan(file, path.name)
                outcome = import_scanned(app, scan, USER)
            with contextlib.suppress(InvalidArgument):  # outside a property test
                event("read once" if scan.plain and len(commands) > 1 else "planned first")
            assert scan.digest == digest, "the digest computed as the file is read is command_digest's"
            return ("ok", outcome.refs)
        if bulk:
            whole = Holding.of(commands)  # as the first pass over a file plans it
            unit = import_stream(app, lambda: iter(commands), total=len(commands), whole=whole, digest=digest,
                                     file_name="f.jsonl", user=USER)
            return ("ok", unit.refs)
        return ("ok", [r.ref for r in app.import_batch(commands, digest=digest, file_name="f.jsonl", user=USER)])
    except BatchRejected as e:
        return ("rejected", e.errors)
    except PgfError as e:
        return ("error", type(e).__name__, str(e))


def _rows(path: Path) -> tuple[list[Any], list[Any], list[Any]]:
    with sqlite3.connect(path) as c:
        events = c.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                           "ORDER BY rowid").fetchall()
        chain = c.execute("SELECT * FROM pgf_chain ORDER BY position").fetchall()
        head = c.execute("SELECT * FROM pgf_chain_head").fetchall()
    return events, chain, head


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "base.db"
    _base(path)
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=lines)
def test_bulk_import_is_the_unit_of_work(commands: list[Command], base: Path, tmp_path: Path, writer: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [Command(c.action, subject=c.subject, kind=c.kind, fields=c.fields, ref=c.ref, reason=c.reason,
                        source=c.source, line=n, deviation=c.deviation, key=c.key)
                for n, c in enumerate(commands, start=1)]
    outcomes, stores = [], []
    start = datetime.now(UTC)
    for bulk in (False, True, "file"):
        path = tmp_path / f"{bulk}-{start.timestamp()}.db"
        shutil.copy(base, path)
        _ticks(monkeypatch, start)
        app = TrialConduct(parse_url(f"sqlite:///{path}", cipher_key=""), clock=lambda: NOW)
        outcomes.append(_run(app, commands, bulk))
        app.close()
        stores.append(_rows(path))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][:2] != ("error", "StoreError"), outcomes[0]
    event(outcomes[0][0])
    assert stores[0] == stores[1] == stores[2]
    if outcomes[0][0] != "ok":
        assert stores[0] == _rows(base)  # nothing written


def test_a_lab_file_is_written_in_chunks_identically(base: Path, tmp_path: Path, writer: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """More lines than a chunk, patients interleaved, implausible values raising queries: the same bytes."""
    commands = [Command("record", subject=f"S{1 + n % 3}", kind="lab", line=n + 1,
                        fields={"date": "2025-03-01" if n % 3 != 2 else "2025-03-30", "anc": 45.0 if n % 97 == 0 else 1.1})
                for n in range(4500)]
    stores, start = [], datetime.now(UTC)
    for bulk in (False, True, "file"):
        path = tmp_path / f"{bulk}.db"
        shutil.copy(base, path)
        _ticks(monkeypatch, start)
        app = TrialConduct(parse_url(f"sqlite:///{path}", cipher_key=""), clock=lambda: NOW)
        outcome = _run(app, commands, bulk)
        assert outcome[0] == "ok", outcome
        stores.append(_rows(path))
    assert stores[0] == stores[1] == stores[2]
    assert len(stores[0][0]) > 4500


def test_a_failure_in_the_writer_is_the_import_s_error_and_nothing_is_written(
        base: Path, tmp_path: Path, writer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store refuses a chunk (here: event times earlier than the last recorded one, a clock set
    back): the import fails with the store's own message, whichever process wrote, and the
    transaction is rolled back (the chunks before it too)."""
    commands = [Command("record", subject="S1", kind="lab", line=n + 1, fields={"date": "2025-03-01", "anc": 1.1})
                for n in range(4500)]
    path = tmp_path / "clock.db"
    shutil.copy(base, path)
    _ticks(monkeypatch, datetime.now(UTC) - timedelta(days=1))
    app = TrialConduct(parse_url(f"sqlite:///{path}", cipher_key=""), clock=lambda: NOW)
    outcome = _run(app, commands, bulk=True)
    app.close()
    assert outcome[0] == "error" and "earlier than the last recorded event" in outcome[2], outcome
    assert _rows(path) == _rows(base)
