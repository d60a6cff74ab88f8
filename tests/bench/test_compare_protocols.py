"""bench/compare_protocols.py: the same store under v1 and v2, every changed patient with a reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Pgf

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compare_protocols.py"


def test_v1_to_v2_changes_are_listed_with_reasons(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/d.db"
    Pgf(url).ok("demo", "--patients", "40", "--seed", "7")
    result = subprocess.run([sys.executable, str(SCRIPT), "--db", url, "--json"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["patients"] == 40 and doc["patients_changed"] == len({c["subject"] for c in doc["changes"]}) > 0
    assert doc["summary"]["old"]["protocol_version"] == "NCT06171906-v1"
    assert doc["summary"]["new"]["protocol_version"] == "NCT06171906-v2"
    for change in doc["changes"]:
        assert change["old"] != change["new"] and change["reason"], change
    same = subprocess.run([sys.executable, str(SCRIPT), "--db", url, "--old", "v2", "--json"], capture_output=True,
                          text=True, timeout=300)
    assert json.loads(same.stdout)["patients_changed"] == 0
