"""Crashes: SIGKILL `pgf import` at random moments; the store holds the whole file or none of it,
and re-running the same file completes without duplicates (imports are keyed by the file's digest)."""

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

from pgf_events.application import TrialConduct
from pgf_events.store import parse_url
from tests.conftest import Pgf

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]


def big_file(path: Path, patients: int = 50, labs: int = 1000) -> int:
    lines = []
    for p in range(1, patients + 1):
        lines.append({"record": "register", "subject": f"K{p:03d}", "site": "PKU", "birth_date": "1980-02-03",
                      "sex": "F", "weight_kg": 61, "transplant_date": "2024-01-10"})
        for i in range(labs - 1):
            day = f"2024-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}"
            lines.append({"record": "lab", "subject": f"K{p:03d}", "date": day, "anc": round(0.1 + i % 50 / 10, 2)})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return len(lines)


def count_events(url: str) -> int:
    app = TrialConduct(parse_url(url))
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.mark.slow
def test_sigkill_during_import_leaves_all_or_nothing_and_rerun_completes(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    total = big_file(path)
    assert total == 50_000
    url = f"sqlite:///{tmp_path}/crash.db"
    env = {**{k: v for k, v in os.environ.items() if k != "PGF_USER"}, "PGF_DB": url}
    # How long does an uninterrupted import take? Kill at random moments within it.
    started = time.perf_counter()
    probe_url = f"sqlite:///{tmp_path}/probe.db"
    subprocess.run([*PGF, "--db", probe_url, "import", str(path)], check=True, env=env, capture_output=True)
    duration = time.perf_counter() - started
    rng = random.Random(7)
    outcomes = []
    for _ in range(10):
        proc = subprocess.Popen([*PGF, "import", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, duration * 0.98))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        events = count_events(url)
        assert events in (0, total + 1), f"partial import: {events} events"  # +1: the ImportBatch record
        verify = subprocess.run([*PGF, "audit", "verify"], env=env, capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr  # the chain verifies after every crash
        outcomes.append(events)
        if events:
            break  # the import won the race before the kill; later reruns must be no-ops
    rerun = subprocess.run([*PGF, "import", str(path)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert count_events(url) == total + 1
    again = subprocess.run([*PGF, "import", str(path)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "already imported" in again.stderr
    assert count_events(url) == total + 1
    assert Pgf(url).ok("history", "K050", "--json").stdout.count('"LabResulted"') == 999
    print(f"import of {total} lines: {duration:.2f}s; kills: {outcomes}")


def test_reimporting_the_same_file_is_a_no_op(tmp_path: Path) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/t.db")
    path = tmp_path / "small.jsonl"
    big_file(path, patients=2, labs=3)
    first = json.loads(pgf.ok("import", str(path), "--json").stdout)
    assert first["imported"] == 6
    second = pgf.ok("import", str(path), "--json")
    assert json.loads(second.stdout)["already_imported"] is True and "already imported" in second.stderr
    assert count_events(pgf.url) == 7
