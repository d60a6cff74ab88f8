"""PostgreSQL: a bulk import into a store analysed while it was small stays linear.

The per-row lookups of the site stamp (the stream's site) and of the notary's triggers version 2 (the
latest event) must use their indexes whatever the statistics say. Analysed with a handful of events, the planner prefers a
sequential scan; inside a statement that inserts thousands of rows that is one scan of the growing
table per row, quadratic (16,000 lines into a 20-patient store: 4.5 s, 48 s once analysed). Speed is a
benchmark's business; this test counts the scans PostgreSQL records instead (``pg_stat_user_tables``).
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pgf, enrol_via_cli
from tests.pgcluster import OWNER, Cluster

pytestmark = pytest.mark.postgres

LINES = 300
TABLES = ("pgf_events", "pgf_chain", "pgf_stream_sites")


def _scans(cluster: Cluster, schema: str) -> dict[str, tuple[int, int]]:
    """Each table's (sequential scans, index scans) so far, as the statistics collector has them."""
    with cluster.connect(OWNER) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute("SELECT relname, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                            "WHERE schemaname = %s AND relname = ANY(%s)", (schema, list(TABLES))).fetchall()
    return {name: (seq, idx) for name, seq, idx in rows}


@pytest.mark.parametrize("made", ["now", "before"])
def test_an_import_into_a_store_analysed_while_small_looks_rows_up_by_index(pg_url: str, tmp_path: Path,
                                                                           made: str) -> None:
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    enrol_via_cli(pgf, "S002")
    cluster, schema = Cluster.session(), pg_url.rsplit("schema=", 1)[1].split("&")[0]
    with cluster.connect(OWNER) as conn:
        if made == "before":  # a store made by an earlier pgf: its trigger functions carry no plan setting
            for function in ("pgf_notarise", "pgf_notarise_links", "pgf_stamp_site"):
                conn.execute(f'ALTER FUNCTION "{schema}".{function}() RESET enable_seqscan')
        for table in TABLES:  # what autovacuum does to a young store: its statistics say "tiny"
            conn.execute(f'ANALYZE "{schema}"."{table}"')
    first = date(2025, 2, 25)
    path = tmp_path / "labs.jsonl"
    path.write_text("".join(json.dumps({"record": "lab", "subject": f"S00{1 + n % 2}",
                                        "date": (first + timedelta(days=n // 2)).isoformat(), "anc": 0.4}) + "\n"
                            for n in range(LINES)))
    before = _scans(cluster, schema)
    pgf.ok("import", str(path))
    deadline = time.monotonic() + 15
    while True:  # the importing backend's counters arrive when it ends: wait until the site stamp's do
        after = _scans(cluster, schema)  # (one lookup of its stream per row; the notary's stamp makes none)
        sites = [a - b for a, b in zip(after["pgf_stream_sites"], before["pgf_stream_sites"], strict=True)]
        if sum(sites) >= LINES or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sum(sites) >= LINES, f"the import's scan counts never arrived: {before} -> {after}"
    for table in TABLES:
        seq = after[table][0] - before[table][0]
        assert seq < LINES // 10, f"{table}: {seq} sequential scans for {LINES} imported lines (one per row?)"


def test_an_import_moves_its_rows_without_compiling_them(pg_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The import's setting above prices a sequential scan at 1e10, above every JIT threshold: each
    chunk's ``INSERT ... SELECT`` (then from a temporary table) was compiled by LLVM (~40 ms a chunk, 40%
    of the server's time). The plan of each move, read in the import's own transaction, must have no
    JIT; under ``jit = on`` (a savepoint, rolled back) the same plan may have it: if it never does, this
    server compiles nothing and the check is skipped."""
    from psycopg.sql import SQL  # noqa: PLC0415

    from pgf_events.audit import recorders_postgres  # noqa: PLC0415

    plans: list[tuple[bool, bool]] = []
    submit = recorders_postgres._Mover.submit

    def explained(mover: Any, job: list[tuple[Any, Any]]) -> None:
        mover.wait()  # the connection is idle: the chunks before are moved
        statement, params = job[-1]  # the chunk's move
        with mover._connection.cursor() as c:
            def jit() -> bool:
                row = c.execute(SQL("EXPLAIN (FORMAT JSON) ") + statement, params).fetchone()
                plan = next(iter(row.values())) if isinstance(row, dict) else row[0]  # the connection's row factory
                return "JIT" in plan[0]
            as_run = jit()
            c.execute("SAVEPOINT probe")
            c.execute("SET LOCAL jit = on")
            c.execute("SET LOCAL jit_above_cost = 0")
            forced = jit()
            c.execute("ROLLBACK TO SAVEPOINT probe")
        plans.append((as_run, forced))
        submit(mover, job)

    monkeypatch.setattr(recorders_postgres._Mover, "submit", explained)
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    path = tmp_path / "labs.jsonl"
    path.write_text("".join(json.dumps({"record": "lab", "subject": "S001", "anc": 0.4,
                                        "date": (date(2025, 2, 25) + timedelta(days=n)).isoformat()}) + "\n"
                            for n in range(40)))
    pgf.ok("import", str(path))
    assert plans, "the import moved no chunk"
    if not any(forced for _, forced in plans):
        pytest.skip("this PostgreSQL compiles nothing even with jit = on (no JIT provider)")
    assert not any(as_run for as_run, _ in plans), "the import's moves are JIT-compiled"
