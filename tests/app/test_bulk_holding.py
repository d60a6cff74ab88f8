"""The bulk import holds a patient whole only until the file's last line touching it: memory is
bounded by the patients a file interleaves, not by its length (issue 18), and what it stores is
what the unit of work stores (the equivalence itself is ``test_bulk_property.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import attrs

from pgf_events.application import Command, TrialConduct
from pgf_events.bulk import CHUNK, BulkUnit
from pgf_events.bulk_plan import Holding
from pgf_events.demo import commands_for, plan_cohort
from pgf_events.store import parse_url
from tests.conftest import NOW, Pgf

USER = "coordinator1"


def _cohort(patients: int, seed: int) -> list[Command]:
    """A whole cohort's lines (every kind, corrections and voids), numbered as a file's."""
    commands = [c for s in plan_cohort(patients, seed) for c in commands_for(s)]
    return [attrs.evolve(c, line=n) for n, c in enumerate(commands, start=1)]


def _app(path: Path) -> TrialConduct:
    return TrialConduct(parse_url(f"sqlite:///{path}", cipher_key=""), clock=lambda: NOW)


def _streams(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT originator_id, originator_version, topic FROM stored_events ORDER BY rowid").fetchall()


def test_the_plan_names_each_held_patients_last_command() -> None:
    commands = [
        Command("record", subject="S1", kind="lab", fields={"date": "2025-03-01", "anc": 1}),  # history-free
        Command("record", subject="S2", kind="infusion", fields={"date": "2025-03-01"}),  # needs S2 whole
        Command("record", subject="S1", kind="lab", fields={"date": "2025-03-02", "anc": 1}),
        Command("record", subject="S2", kind="lab", fields={"date": "2025-03-02", "anc": 1}),  # S2's last
        Command("void", ref="S3#4", reason="typo"),  # needs S3 whole; its only command
        Command("record", subject="s3", kind="lab", fields={"date": "2025-03-02", "anc": 1}),  # S3's last
    ]
    assert Holding.of(commands) == {"S2": 4, "S3": 6}  # S1 is never held whole: only its facts are kept


def test_a_whole_cohort_streams_patient_by_patient(tmp_path: Path) -> None:
    commands = _cohort(12, seed=3)
    whole = Holding.of(commands)
    assert len(whole) >= 12  # every patient has a registration: each is held whole
    bulk, unit_of_work = tmp_path / "bulk.db", tmp_path / "uow.db"
    app = _app(bulk)
    held = []
    with app.recorder.bulk() as insert:  # type: ignore[attr-defined]
        unit = BulkUnit(app, USER, whole=whole, defer_changes=True, insert=insert)
        for command in commands:
            unit.feed(command)
            held.append(len(unit.patients))
            assert len(unit.queue) <= CHUNK, "events were kept instead of written"
        unit.finish()
    app.close()
    assert max(held) == 1  # a cohort's patients come one after the other: one aggregate at a time
    assert len(unit.let) == len(whole)  # each was let go after its last line
    other = _app(unit_of_work)
    other.execute(commands, user=USER)  # the unit of work, all in memory until it saves
    other.close()
    assert _streams(bulk) == _streams(unit_of_work)


def test_a_patient_touched_again_at_the_end_is_held_until_then(tmp_path: Path) -> None:
    commands = _cohort(3, seed=3)
    first = commands[0].subject
    late = Command("record", subject=first, kind="lab", fields={"date": "2025-12-30", "anc": 1.1},
                   line=len(commands) + 1)
    commands.append(late)
    whole = Holding.of(commands)
    assert whole[first] == len(commands)
    app = _app(tmp_path / "s.db")
    with app.recorder.bulk() as insert:  # type: ignore[attr-defined]
        unit = BulkUnit(app, USER, whole=whole, defer_changes=True, insert=insert)
        for command in commands[:-1]:
            unit.feed(command)
        assert first in unit.patients and first not in unit.let
        unit.feed(commands[-1])
        assert first in unit.let and not unit.patients
        unit.finish()
    assert app.patient(first).version == sum(1 for c in commands if (c.subject or c.ref.split("#")[0]) == first)
    app.close()


def test_the_demo_records_into_a_store_in_memory() -> None:
    result = Pgf("memory://").ok("demo", "--patients", "2", "--seed", "4")  # no bulk write there: batch by batch
    assert "patients enrolled" in result.stdout
