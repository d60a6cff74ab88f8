"""The long-running process figures (issue 18 item 2): ``pgf record`` answered by ``pgf daemon``,
and one record inside ``pgf shell``. Each with its baseline, in the same run, on the same store.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import data
from harness import _env, _pgf_argv, json_rows, pgf, python_c, run


@contextmanager
def daemon(url: str, db: Path) -> Iterator[None]:
    proc = subprocess.Popen([*_pgf_argv(), "--db", url, "daemon"], stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "serving" not in line:
            raise RuntimeError(f"pgf daemon did not start: {line}{proc.stderr.read()[-2000:]}")
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def baseline_code(db: Path) -> str:
    """A ``python -c`` that opens the store file and inserts one row of an event's size (fig_record's)."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, data BLOB)")
    payload = json_rows([280])[0][0].decode()
    return (f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
            f"c.execute('INSERT INTO bench_baseline (data) VALUES (?)', ({payload!r},)); c.commit()")


def record_via_daemon(tmp: Path, runs: int) -> tuple[float, float]:
    """(median seconds of one ``pgf record lab`` answered by the daemon, median of the bare insert)."""
    url, db = f"sqlite:///{tmp}/import.db", tmp / "import.db"
    code = baseline_code(db)
    engine, base = [], []
    with daemon(url, db):
        for n in range(-1, runs):  # run -1 warms up and is not counted
            base_run = python_c(code).seconds
            day = (data.ENROLLED_ON + timedelta(days=600 + n)).isoformat()
            engine_run = pgf(url, "record", "lab", "P00002", "--date", day, "--anc", "0.8", "--plt", "40").seconds
            if n >= 0:
                base.append(base_run)
                engine.append(engine_run)
    return statistics.median(engine), statistics.median(base)


def per_record_in_shell(tmp: Path, records: int, rounds: int = 3) -> tuple[float, float]:
    """(seconds per record inside ``pgf shell``, seconds per bare insert + commit in one process).

    The shell reads ``records`` lab lines from a file; its start-up (the same shell with no lines) is
    subtracted. Every record is committed (and synced) on its own, as typed; so is every bare insert.
    """
    url, db = f"sqlite:///{tmp}/import.db", tmp / "import.db"
    empty, sheet = tmp / "empty.txt", tmp / "sheet.txt"
    empty.write_text("")
    shell_times, bare_times = [], []
    payload = json_rows([280])[0][0]
    for r in range(rounds):
        days = [(data.ENROLLED_ON + timedelta(days=900 + r * records + n)).isoformat() for n in range(records)]
        sheet.write_text("".join(f"record lab P00003 --date {d} --anc 0.8 --plt 40\n" for d in days))
        start_up = run([*_pgf_argv(), "--db", url, "shell"], stdin=empty).seconds
        total = run([*_pgf_argv(), "--db", url, "shell"], stdin=sheet).seconds
        shell_times.append((total - start_up) / records)
        conn = sqlite3.connect(db, isolation_level=None)
        started = time.perf_counter()
        for _ in range(records):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_baseline (data) VALUES (?)", (payload,))
            conn.execute("COMMIT")
        bare_times.append((time.perf_counter() - started) / records)
        conn.close()
    return statistics.median(shell_times), statistics.median(bare_times)
