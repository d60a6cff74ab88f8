"""Concurrent writers keep one unbroken chain: every link is written in its event's transaction."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from pgf_events.application import TrialConduct
from tests.conftest import Pgf
from tests.helpers import USER, register


def _writer(url: str, subject: str, count: int, start: object) -> None:
    app = TrialConduct.open(url)
    app.patient(subject)
    start.wait()  # type: ignore[attr-defined]
    for i in range(count):
        app.record("lab", subject, {"date": "2025-03-01", "anc": 0.01 * (i + 1)}, user=USER)
    app.close()


@pytest.mark.slow
def test_two_processes_writing_at_once_leave_a_chain_that_verifies(store_url: str) -> None:
    app = TrialConduct.open(store_url)
    register(app, "S001")
    register(app, "S002")
    app.close()
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(store_url, s, 40, start)) for s in ("S001", "S002")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    summary = json.loads(Pgf(store_url).ok("audit", "verify", "--json").stdout)
    assert summary["ok"] and summary["events"] == 82 and summary["head"]["position"] == summary["last_position"]
