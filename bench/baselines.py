"""The baselines: Python's ``sqlite3`` doing a figure's work directly, with no engine (timed in this
process; :func:`harness.pinned` keeps them on the engine's core for the per-core figures)."""

from __future__ import annotations

import json
import sqlite3
from hashlib import sha256
from pathlib import Path

from harness import timed


def _fresh_sqlite(path: Path) -> sqlite3.Connection:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def stored_sizes(db: Path, after: int = 0) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [n for (n,) in conn.execute("SELECT length(state) FROM stored_events WHERE rowid > ?", (after,))]


def json_rows(sizes: list[int]) -> list[tuple[bytes]]:
    """One JSON document per size, each exactly that many bytes long."""
    out = []
    for n in sizes:
        doc = json.dumps({"x": ""}).encode()
        out.append((json.dumps({"x": "a" * max(0, n - len(doc))}).encode(),))
    return out


def baseline_sqlite_insert(path: Path, rows: list[tuple[bytes]]) -> float:
    """Seconds to executemany the rows into a fresh WAL file in one transaction."""
    conn = _fresh_sqlite(path)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, data BLOB)")

    def write() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events (data) VALUES (?)", rows)
        conn.execute("COMMIT")

    seconds = timed(write)
    conn.close()
    return seconds


def baseline_select_loads(db: Path) -> tuple[float, int]:
    """Seconds to select the whole event table in log order and json.loads every payload."""
    conn = sqlite3.connect(db)
    count = 0

    def read() -> None:
        nonlocal count
        loads = json.loads
        for (state,) in conn.execute("SELECT state FROM stored_events ORDER BY rowid"):
            loads(state)
            count += 1

    seconds = timed(read)
    conn.close()
    return seconds, count


def baseline_select_chain(db: Path) -> tuple[float, int]:
    """Seconds to select the event table in log order and chain SHA-256 over the payloads."""
    conn = sqlite3.connect(db)
    count = 0

    def read() -> None:
        nonlocal count
        digest = b"\0" * 32
        for (state,) in conn.execute("SELECT state FROM stored_events ORDER BY rowid"):
            digest = sha256(digest + state).digest()
            count += 1

    seconds = timed(read)
    conn.close()
    return seconds, count
