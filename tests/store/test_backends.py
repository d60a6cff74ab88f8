"""The same store behaviour on SQLite and PostgreSQL: persistence, atomic batches, concurrent writers."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import time

import pytest

from pgf_events.application import BatchRejected, Command, TrialConduct
from pgf_events.domain.errors import DuplicatePatientError
from tests.conftest import REGISTER, Pgf, fingerprint
from tests.helpers import USER, enrolled, infuse, register
from tests.pgcluster import Cluster


def test_events_survive_reopening_the_store(store_url: str) -> None:
    app = TrialConduct.open(store_url)
    enrolled(app)
    infuse(app, "S001", "2025-02-25")
    app.correct("S001#5", {"cells": "6.3e7"}, "pharmacy recount", user=USER)
    app.close()
    again = TrialConduct.open(store_url)
    patient = again.patient("S001")
    assert patient.version == 6 and patient.entries[5].record.cells == 6.3e7
    assert again.subjects() == ["S001"]
    with pytest.raises(DuplicatePatientError):
        register(again, "S001")
    again.close()


def test_a_failed_batch_writes_nothing(store_url: str) -> None:
    app = TrialConduct.open(store_url)
    register(app, "S001")
    before = fingerprint(store_url)
    commands = [
        Command("record", subject="S001", kind="lab", fields={"date": "2025-03-01", "anc": 0.4}, line=1),
        Command("record", subject="S002", kind="register", line=2,
                fields={"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61, "transplant_date": "2025-01-10"}),
        Command("record", subject="S002", kind="lab", fields={"date": "2025-03-01", "anc": -1}, line=3),
    ]
    with pytest.raises(BatchRejected):
        app.execute(commands, user=USER)
    assert fingerprint(store_url) == before
    assert [r.ref for r in app.execute(commands[:2], user=USER)] == ["S001#2", "S002#1"]
    app.close()


def test_the_cli_works_on_each_backend(pgf_any: Pgf) -> None:
    pgf_any.ok("record", "register", "S001", *REGISTER)
    pgf_any.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4")
    pgf_any.rejected("record", "lab", "S001", "--date", "2025-03-01", "--anc", "400", contains="out of range")
    events = json.loads(pgf_any.ok("history", "S001", "--json").stdout)["events"]
    assert [e["ref"] for e in events] == ["S001#1", "S001#2"]


def _writer(url: str, name: str, count: int, queue: mp.Queue, start: object) -> None:
    app = TrialConduct.open(url)
    app.patient("S001")  # warm up: both processes then start writing at the same moment
    start.wait()  # type: ignore[attr-defined]
    refs = []
    for i in range(count):
        result = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.01 * (i + 1), "wbc": 1 if name == "a" else 2},
                            user=app.session_user() or f"writer-{name}")
        refs.append(result.ref)
        time.sleep(0.002)  # coordinators do not type back-to-back; lets the other writer in
    retried = app.conflicts_retried
    app.close()
    queue.put((name, (refs, retried)))


@pytest.mark.slow
def test_two_processes_recording_to_one_patient_lose_nothing(store_url: str) -> None:
    app = TrialConduct.open(store_url)
    register(app, "S001")
    app.close()
    ctx = mp.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Barrier(2)
    count = 60
    procs = [ctx.Process(target=_writer, args=(Cluster.login_url(store_url, f"writer-{name}"), name, count, queue, start))
             for name in ("a", "b")]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    refs = results["a"][0] + results["b"][0]
    retried = results["a"][1] + results["b"][1]
    assert len(set(refs)) == 2 * count  # every command got its own event
    app = TrialConduct.open(store_url)
    events = app.stream("S001")[1:]
    assert len(events) == 2 * count
    writers = [e.recorded_by for e in events]
    switches = sum(1 for x, y in itertools.pairwise(writers) if x != y)
    assert switches > 1 or retried > 0, "the writers neither interleaved nor conflicted: no concurrency tested"
    by_writer: dict[str, list[float]] = {"writer-a": [], "writer-b": []}
    for e in events:
        by_writer[e.recorded_by].append(round(e.record.anc, 2))
    for values in by_writer.values():
        assert values == [round(0.01 * (i + 1), 2) for i in range(count)]  # each writer's records, in its order
    app.close()
