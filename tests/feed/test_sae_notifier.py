"""examples/sae_notifier.py: a consumer killed mid-transaction resumes with no duplicate and no gap."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.feed import ChangeFeed
from pgf_events.store import parse_url
from tests.feed.procs import ROOT, env, stop, wait_for
from tests.helpers import USER, enrolled, infuse

NOTIFIER = ROOT / "examples" / "sae_notifier.py"
SUBJECTS = [f"S{n:02d}" for n in range(1, 7)]


def _sae(day: str, term: str, **extra: Any) -> dict[str, Any]:
    return {"onset": day, "term": term, "grade": 3, "serious": "hospitalisation", "related": "possible",
            "aware": f"{day}T09:30", **extra}


def _build(url: str) -> None:
    """Six treated patients with serious AEs, corrections and voids, caught up after every event."""
    app = TrialConduct(parse_url(url))
    feed = ChangeFeed(app)
    try:
        for subject in SUBJECTS:
            enrolled(app, subject)
            infuse(app, subject, "2025-03-01")
            feed.catch_up()
        steps = [
            lambda s: app.record("ae", s, _sae("2025-03-03", "febrile neutropenia"), user=USER),
            lambda s: app.record("lab", s, {"date": "2025-03-04", "anc": 0.6, "plt": 20, "hb": 70}, user=USER),
            lambda s: app.record("ae", s, _sae("2025-03-05", "pneumonia", serious="life-threatening",
                                               related="probable"), user=USER),
            lambda s: app.correct(f"{s}#6", {"aware": "2025-03-03T15:00Z"}, "awareness time per site log",
                                  user=USER),
            lambda s: app.record("ae", s, {"onset": "2025-03-06", "term": "rash", "grade": 1}, user=USER),
            lambda s: app.void(f"{s}#8", "entered for the wrong patient", user=USER) if s in SUBJECTS[::2] else None,
            lambda s: app.record("lab", s, {"date": "2025-03-08", "anc": 0.9, "plt": 35, "hb": 80}, user=USER),
        ]
        for step in steps:
            for subject in SUBJECTS:
                step(subject)
                feed.catch_up()
    finally:
        feed.close()
        app.close()


def _notifier(url: str, state: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(NOTIFIER), "--db", url, "--state", str(state), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env("notifier"), cwd=ROOT)


def _query(state: Path, sql: str) -> list[tuple[Any, ...]]:
    if not state.exists():
        return []
    conn = sqlite3.connect(state, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/trial.db"
    _build(url)
    return url


@pytest.mark.slow
def test_killed_notifier_resumes_with_no_duplicate_and_no_gap(store: str, tmp_path: Path) -> None:
    with ChangeFeed(store) as feed:
        expected = [(c.position, c.subject, c.event_ref) for c in feed.changes(projection="safety")]
    assert len(expected) > 40

    whole = tmp_path / "whole.db"
    done = _notifier(store, whole, "--once")
    assert done.wait(timeout=120) == 0, done.stderr.read() if done.stderr else ""

    crashed = tmp_path / "crashed.db"
    slow = _notifier(store, crashed, "--once", "--delay", "0.05")  # each transaction stays open 50 ms
    try:
        wait_for(lambda: len(_query(crashed, "SELECT position FROM applied")) >= len(expected) // 3, timeout=120,
                 what="the notifier to get a third of the way")
        slow.kill()  # SIGKILL, most likely inside an open transaction
        slow.wait(timeout=30)
    finally:
        if slow.poll() is None:
            slow.kill()
    before = len(_query(crashed, "SELECT position FROM applied"))
    assert 0 < before < len(expected)
    again = _notifier(store, crashed, "--once")
    assert again.wait(timeout=120) == 0, again.stderr.read() if again.stderr else ""

    applied = _query(crashed, "SELECT position, subject, event_ref FROM applied ORDER BY position")
    assert applied == expected  # every change exactly once (position is the primary key: no duplicates)
    assert _query(crashed, "SELECT position FROM feed_position") == [(expected[-1][0],)]
    table = "SELECT ae_ref, subject, term, awareness, sponsor_due, regulator_due, met FROM sae_due ORDER BY ae_ref"
    assert _query(crashed, table) == _query(whole, table)
    rows = _query(whole, table)
    assert {r[0] for r in rows} == {f"{s}#{n}" for s in SUBJECTS for n in (6, 8) if not (n == 8 and s in SUBJECTS[::2])}
    corrected = {r[0]: r for r in rows}[f"{SUBJECTS[1]}#6"]
    assert corrected[3] == "2025-03-03T15:00:00Z" and corrected[4] == "2025-03-04T15:00:00Z"  # 24 h sponsor clock
    assert all(r[5] for r in rows if r[0].endswith("#8"))  # related + serious: a SUSAR with a regulator clock


def test_live_notifier_picks_up_a_new_sae_and_stops_on_sigterm(store: str, tmp_path: Path) -> None:
    state = tmp_path / "live.db"
    live = _notifier(store, state, "--interval", "0.05")
    try:
        with ChangeFeed(store) as feed:
            last = list(feed.changes(projection="safety"))[-1].position
        wait_for(lambda: _query(state, "SELECT position FROM feed_position") == [(last,)], timeout=60,
                 what="the notifier to catch up")
        app = TrialConduct(parse_url(store))
        try:
            ref = app.record("ae", "S01", _sae("2025-03-09", "sepsis"), user=USER).ref
        finally:
            app.close()
        wait_for(lambda: _query(state, f"SELECT 1 FROM sae_due WHERE ae_ref = '{ref}'"), timeout=60,
                 what=f"{ref} in the due-date table")
        assert _query(state, "SELECT position FROM feed_position")[0][0] > last
        assert stop(live, signal.SIGTERM) == 0
        out, err = live.communicate(timeout=30)
        assert f"{ref} S01 sepsis: sponsor report due" in out and "Traceback" not in err
    finally:
        if live.poll() is None:
            live.kill()
