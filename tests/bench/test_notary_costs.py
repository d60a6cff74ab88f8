"""bench/notary_costs.py: the PostgreSQL notary's server cost, every trigger version, in schemas it drops."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_cluster
from tests.pgcluster import SUPERUSER

pytestmark = pytest.mark.postgres
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "notary_costs.py"


def test_it_measures_every_notary_and_leaves_no_schema() -> None:
    cluster = postgres_cluster()
    with cluster.connect() as conn:
        before = {n for (n,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'notary\\_%'")}
    result = subprocess.run([sys.executable, str(SCRIPT), "--postgres", cluster.url(SUPERUSER), "--rows", "4000",
                             "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert [re.search(r"triggers version (\d)", line)[1] for line in lines] == ["1", "2", "3"]  # type: ignore[index]
    assert "pgf_notarise_head" in lines[0] and "pgf_notarise_links" in lines[1] and "pgf_notarise_links" in lines[2]
    with cluster.connect() as conn:
        after = {n for (n,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'notary\\_%'")}
    assert after == before
