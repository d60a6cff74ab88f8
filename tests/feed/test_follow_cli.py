"""``pgf follow`` in separate processes, on SQLite and PostgreSQL, while another process writes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pgf_events.application import TrialConduct
from pgf_events.projections.query_feed import FEED_PROJECTIONS
from pgf_events.store import parse_url
from tests.conftest import Pgf
from tests.feed.procs import (
    PGF,
    create_store,
    env,
    json_lines,
    last_position,
    line_count,
    run_pgf,
    start_pgf,
    start_writer,
    stop,
    wait_for,
)
from tests.helpers import USER, enrolled


def positions(changes: list[dict]) -> list[int]:
    return [c["position"] for c in changes]


def snapshot(url: str, *args: str) -> list[dict]:
    result = run_pgf(url, "follow", "--once", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_followers_killed_and_resumed_see_every_change_once_in_order(store_url: str, tmp_path: Path) -> None:
    create_store(store_url)
    whole = start_pgf(store_url, "follow", out=tmp_path / "whole.out", err=tmp_path / "whole.err")
    killed = start_pgf(store_url, "follow", out=tmp_path / "killed.out", err=tmp_path / "killed.err")
    writer = start_writer(store_url, patients=4, delay=0.01)
    resumed = None
    try:
        wait_for(lambda: line_count(tmp_path / "killed.out") >= 60, timeout=120, what="the follower's output")
        killed.kill()  # SIGKILL, mid-stream
        killed.wait(timeout=30)
        first = json_lines(tmp_path / "killed.out")
        resumed = start_pgf(store_url, "follow", "--after", str(first[-1]["position"]),
                            out=tmp_path / "resumed.out", err=tmp_path / "resumed.err")
        assert writer.wait(timeout=300) == 0, writer.stderr.read() if writer.stderr else ""
        final = snapshot(store_url)
        last = final[-1]["position"]
        for name in ("whole", "resumed"):
            wait_for(lambda n=name: last_position(tmp_path / f"{n}.out") == last, timeout=120,
                     what=f"the {name} follower to reach position {last}")
        assert stop(whole, signal.SIGINT) == 0
        assert stop(resumed, signal.SIGTERM) == 0
    finally:
        for proc in (whole, killed, writer, resumed):
            if proc is not None and proc.poll() is None:
                proc.kill()
    for name in ("whole", "resumed"):
        assert (tmp_path / f"{name}.err").read_text() == "", name  # no traceback, nothing at all
    uninterrupted, second = json_lines(tmp_path / "whole.out"), json_lines(tmp_path / "resumed.out")
    assert len(first) < len(final), "the follower was not killed mid-stream"
    assert positions(uninterrupted) == sorted(set(positions(uninterrupted))), "positions not strictly increasing"
    assert uninterrupted == final  # everything, in order, once
    assert first + second == final  # killed + resumed: no gap, no repeat
    assert {c["kind"] for c in final} == {"insert", "update"}
    assert {c["projection"] for c in final} == set(FEED_PROJECTIONS)  # the writer's automatic queries too


@pytest.mark.postgres
def test_a_live_follower_on_postgresql_sees_a_new_event_within_a_second(pg_url: str, tmp_path: Path) -> None:
    app = TrialConduct(parse_url(pg_url))
    try:
        enrolled(app, "S001")
        out = tmp_path / "live.out"
        follower = start_pgf(pg_url, "follow", "--projection", "safety", out=out, err=tmp_path / "live.err")
        try:
            wait_for(lambda: json_lines(out), timeout=60, what="the follower to start")
            lags = []
            for n in range(3):
                ref = app.record("ae", "S001", {"onset": f"2025-03-0{n + 1}", "term": "nausea", "grade": 1},
                                 user=USER).ref
                committed = time.monotonic()
                wait_for(lambda r=ref: any(c["event_ref"] == r for c in json_lines(out)), timeout=30,
                         what=f"{ref} to arrive", every=0.005)
                lags.append(time.monotonic() - committed)
            assert max(lags) < 1.0, lags
        finally:
            assert stop(follower, signal.SIGTERM) == 0
    finally:
        app.close()


def test_once_on_an_empty_store_prints_nothing(store_url: str) -> None:
    create_store(store_url)
    result = Pgf(store_url).ok("follow", "--once")
    assert result.stdout == ""


def test_follow_needs_an_existing_store(sqlite_url: str) -> None:
    result = Pgf(sqlite_url)("follow", "--once")
    assert result.exit_code == 1 and result.stderr.startswith("Error: there is no trial store")


def test_an_unknown_projection_is_a_usage_error(pgf: Pgf) -> None:
    create_store(pgf.url)
    result = pgf.rejected("follow", "--projection", "adverse", "--once", code=2, contains="--projection")
    assert "safety" in result.stderr


def test_a_negative_position_is_a_usage_error(pgf: Pgf) -> None:
    create_store(pgf.url)
    pgf.rejected("follow", "--after", "-1", "--once", code=2, contains="--after")


def test_projection_and_after_filter_the_feed(pgf: Pgf) -> None:
    create_store(pgf.url)
    for subject in ("S001", "S002"):
        app = TrialConduct(parse_url(pgf.url))
        enrolled(app, subject)
        app.close()
        pgf.ok("follow", "--once")  # catch up between the subjects: both inserts and updates
    every = [json.loads(line) for line in pgf.ok("follow", "--once").stdout.splitlines()]
    safety = [json.loads(line) for line in pgf.ok("follow", "--once", "--projection", "safety").stdout.splitlines()]
    assert safety == [c for c in every if c["projection"] == "safety"] and safety
    middle = every[len(every) // 2]["position"]
    later = [json.loads(line) for line in pgf.ok("follow", "--once", "--after", str(middle)).stdout.splitlines()]
    assert later == [c for c in every if c["position"] > middle]


def test_a_reader_that_goes_away_stops_the_follower_quietly(sqlite_url: str) -> None:
    create_store(sqlite_url)
    app = TrialConduct(parse_url(sqlite_url))
    for n in range(24):
        enrolled(app, f"S{n:03d}")
    app.close()
    proc = subprocess.Popen([*PGF, "--db", sqlite_url, "follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `pgf follow | head -1`
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_follow_and_serve_need_a_read_role_in_an_access_controlled_store(sqlite_url: str) -> None:
    from click.testing import CliRunner

    from pgf_events import identity
    from pgf_events.cli import cli

    def as_(login: str, *args: str) -> tuple[int, str]:
        with identity.authenticator_replaced(lambda: login):
            result = CliRunner().invoke(cli, ["--db", sqlite_url, *args], env={"PGF_USER": None})
        return result.exit_code, result.stdout + result.stderr

    create_store(sqlite_url)
    assert as_("ada", "users", "grant", "ada", "admin", "--reason", "set-up")[0] == 0
    assert as_("ada", "users", "grant", "mona", "monitor")[0] == 0
    assert as_("mona", "follow", "--once")[0] == 0
    for args in (("follow", "--once"), ("serve", "--port", "0")):
        code, text = as_("eve", *args)
        assert code == 1 and "role" in text, (args, text)
