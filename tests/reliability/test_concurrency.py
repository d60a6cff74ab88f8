"""Concurrency: 4 processes x 500 records aimed at the same 10 patients, on SQLite and PostgreSQL.
Every record is stored exactly once (count and content), conflicts are retried within a bound."""

from __future__ import annotations

import multiprocessing as mp
import random
from collections import Counter

import pytest

from pgf_events import identity
from pgf_events.application import TrialConduct
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.store import ProjectionStore
from tests.helpers import register
from tests.pgcluster import Cluster

WRITERS, PER_WRITER, PATIENTS = 4, 500, 10


def _writer(url: str, writer: int, queue: mp.Queue, start: object) -> None:
    with identity.authenticator_replaced(lambda: f"w{writer}"):  # SQLite: the harness's seam
        _write(url, writer, queue, start)


def _write(url: str, writer: int, queue: mp.Queue, start: object) -> None:
    app = TrialConduct.open(url)
    rng = random.Random(writer)
    start.wait()  # type: ignore[attr-defined]
    for n in range(PER_WRITER):
        if writer == 0 and n % 100 == 50:  # one writer also catches the read models up now and then
            store = ProjectionStore(app)
            store.catch_up()
            store.close()
        subject = f"C{rng.randrange(PATIENTS):02d}"
        # a unique, checkable value per record: writer in wbc, sequence number in plt
        app.record("lab", subject, {"date": "2025-03-01", "wbc": writer, "plt": n}, user=app.acting_user())
    queue.put((writer, app.conflicts_retried))
    app.close()


@pytest.mark.slow
def test_four_writers_on_ten_patients_lose_nothing(store_url: str) -> None:
    app = TrialConduct.open(store_url)
    for p in range(PATIENTS):
        register(app, f"C{p:02d}")
    app.close()
    ctx = mp.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Barrier(WRITERS)
    # Each writer is its own person: on SQLite the harness names it (the app API takes the name), on
    # PostgreSQL it logs in as its own login.
    urls = [Cluster.login_url(store_url, f"w{w}") for w in range(WRITERS)]
    procs = [ctx.Process(target=_writer, args=(urls[w], w, queue, start)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    retried = dict(queue.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    app = TrialConduct.open(store_url)
    seen: Counter[tuple[int, int]] = Counter()
    expected: Counter[tuple[int, int]] = Counter()
    for w in range(WRITERS):
        rng = random.Random(w)
        for n in range(PER_WRITER):
            rng.randrange(PATIENTS)
            expected[(w, n)] += 1
    per_patient = {}
    for p in range(PATIENTS):
        events = app.stream(f"C{p:02d}")
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))  # no gaps
        per_patient[p] = len(events) - 1
        for e in events[1:]:
            assert e.recorded_by == f"w{int(e.record.wbc)}"
            seen[(int(e.record.wbc), int(e.record.plt))] += 1
    assert seen == expected  # every record exactly once, with its own content
    assert sum(per_patient.values()) == WRITERS * PER_WRITER
    # Projections consistent afterwards: caught up (partly while writers ran, see _reader) = rebuilt.
    store = ProjectionStore(app)
    store.catch_up()
    caught_up = {name: store.rows(name) for name in PROJECTIONS}
    store.rebuild()
    assert {name: store.rows(name) for name in PROJECTIONS} == caught_up
    assert len(caught_up["eligibility"]) == PATIENTS
    store.close()
    print(f"conflicts retried per writer: {retried}")
    app.close()
