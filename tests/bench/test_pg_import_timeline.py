"""bench/pg_import_timeline.py: one import's wall, importer and server CPU and waits, in a schema it drops."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_cluster
from tests.pgcluster import SUPERUSER

pytestmark = pytest.mark.postgres
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "pg_import_timeline.py"


def test_it_times_an_import_and_leaves_no_schema() -> None:
    cluster = postgres_cluster()
    query = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'timeline\\_%'"
    with cluster.connect() as conn:
        before = {n for (n,) in conn.execute(query)}
    result = subprocess.run([sys.executable, str(SCRIPT), "--postgres", cluster.url(SUPERUSER), "--events", "1500",
                             "--chunk", "500"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["chunks"] >= 3 and 0 < figures["bulk_wall"] <= figures["wall"]
    assert figures["backend_cpu"] >= 0 and figures["bulk_cpu"] > 0
    with cluster.connect() as conn:
        after = {n for (n,) in conn.execute(query)}
    assert after == before
