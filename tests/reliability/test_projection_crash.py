"""Crashes during projection work: SIGKILL `pgf projections rebuild` and a catching-up `pgf report`
at random moments; the next run yields read models identical to an uninterrupted one, and the
event chain verifies after every crash."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgf_events.projections.slices import PROJECTIONS

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PGF_USER"}
    return subprocess.run([*PGF, "--db", url, *args], env=env, capture_output=True, text=True, timeout=300)


def reports(url: str) -> dict[str, str]:
    out = {}
    for name in PROJECTIONS:
        result = run(url, "report", name, "--json")
        assert result.returncode == 0, result.stderr
        out[name] = result.stdout
    return out


@pytest.mark.slow
def test_sigkill_during_rebuild_and_catch_up_leaves_identical_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    assert run(url, "demo", "--patients", "120", "--seed", "9").returncode == 0  # ~8k events, tables filled
    reference = reports(url)
    started = time.perf_counter()
    assert run(url, "projections", "rebuild").returncode == 0
    duration = time.perf_counter() - started
    rng = random.Random(11)
    env = {k: v for k, v in os.environ.items() if k != "PGF_USER"}
    for round_ in range(6):
        # Alternate: kill a full rebuild, or kill a report that must first catch up from zero.
        args = ["projections", "rebuild"] if round_ % 2 == 0 else ["report", "endpoints", "--json"]
        if round_ % 2:
            # make the read models stale first: a rebuild of everything, killed at once, then a report catches up
            quick = subprocess.Popen([*PGF, "--db", url, "projections", "rebuild"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.6)
            quick.send_signal(signal.SIGKILL)
            quick.wait()
        proc = subprocess.Popen([*PGF, "--db", url, *args], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, max(0.5, duration)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        verify = run(url, "audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert reports(url) == reference, f"read models differ after crash {round_}"
    status = json.loads(run(url, "projections", "status", "--json").stdout)
    assert all(row["behind"] == 0 and row["current"] for row in status["projections"])
