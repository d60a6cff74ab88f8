"""bench/verify_costs.py: where verify's time goes, measured on a real store, which it leaves as it was."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Pgf

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "verify_costs.py"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_measures_the_chains_own_material_and_writes_nothing(tmp_path: Any) -> None:
    db = tmp_path / "d.db"
    Pgf(f"sqlite:///{db}").ok("demo", "--patients", "6", "--seed", "3")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _digest(db)
    result = subprocess.run([sys.executable, str(SCRIPT), str(db), "--events", "150", "--rounds", "2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("150 events (their link material chains to the stored link at position 150)")
    assert len([line for line in result.stdout.splitlines() if line.rstrip().endswith(" s")]) == 6
    assert _digest(db) == before


def test_a_log_whose_material_does_not_chain_is_refused(tmp_path: Any) -> None:
    db = tmp_path / "d.db"
    Pgf(f"sqlite:///{db}").ok("demo", "--patients", "6", "--seed", "3")
    with sqlite3.connect(db) as conn:  # an attacker's edit behind the engine's back
        conn.execute("DROP TRIGGER pgf_no_update_stored_events")
        conn.execute("UPDATE stored_events SET state = CAST(CAST(state AS TEXT) || ' ' AS BLOB) WHERE rowid = 10")
    result = subprocess.run([sys.executable, str(SCRIPT), str(db), "--events", "150"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0 and "does not give the stored link at position 150" in result.stderr
