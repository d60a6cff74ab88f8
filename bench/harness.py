"""bench/run.py's harness: the machine description, running ``pgf`` in a measured process, and the
baselines (Python's ``sqlite3`` doing the same work directly) every figure is compared with.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# ---------------------------------------------------------------------------------------- machine

def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram_gib, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "os": f"{platform.system()} {platform.release()}"}
    info["description"] = (f"{info['cpu']}, {info['cores']} cores, {ram_gib} GiB RAM, Python {info['python']}, "
                           f"SQLite {info['sqlite']}, {info['os']}")
    return info


# ---------------------------------------------------------------------------------------- processes

def _pgf_argv() -> list[str]:
    script = Path(sys.executable).parent / "pgf"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from pgf_events.cli import main; main()"]


PYCACHE: list[str] = []  # set by main(): where every child keeps its bytecode


def _env() -> dict[str, str]:
    """The children's environment: no stray pgf settings, and bytecode cached as an installed package
    has it (in a folder of the run, so the source tree stays clean), even if this shell says
    PYTHONDONTWRITEBYTECODE."""
    drop = ("PGF_DB", "PGF_PROTOCOL", "PGF_CIPHER_KEY", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.pop("PGF_USER", None)  # identity is the OS account or the database login, never the environment
    if PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    return env


def _tree_peaks_kb(pid: int, peaks: dict[int, int]) -> None:
    """Record the peak resident memory (VmHWM) of a process and each of its descendants (Linux /proc)."""
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[p] = max(peaks.get(p, 0), int(line.split()[1]))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue


@attrs.frozen
class Run:
    seconds: float
    max_rss_mb: float  # peak of the process and its children together
    stdout: str


def run(argv: list[str], *, stdin: Path | None = None, sample_rss: bool = False) -> Run:
    """Run a process to completion: wall time, peak RSS, stdout; raise if it fails.

    With ``sample_rss``, peak RSS is the sum over the process and its descendants (worker processes
    count too) of each one's own peak (``VmHWM``), read every 10 ms: an upper bound of the tree's
    peak, as the peaks need not coincide. Not ``wait4``'s ru_maxrss: on Linux a child started by
    vfork (as subprocess does) inherits the *parent's* high-water mark at exec, so after this
    process generated a million events it would report this process's size, not the child's.
    """
    stdin_file = stdin.open("rb") if stdin else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    chunks: dict[str, bytes] = {}
    peaks: dict[int, int] = {}
    done = threading.Event()

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    def sample() -> None:
        while not done.wait(0.01):
            _tree_peaks_kb(proc.pid, peaks)

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    if sample_rss:
        threads.append(threading.Thread(target=sample))
    for t in threads:
        t.start()
    _, status, _ = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    if stdin:
        stdin_file.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {chunks['err'].decode()[-2000:]}")
    return Run(seconds, sum(peaks.values()) / 1024 if sample_rss else 0.0, chunks["out"].decode())


def pgf(url: str, *args: str, stdin: Path | None = None, sample_rss: bool = False) -> Run:
    return run([*_pgf_argv(), "--db", url, *args], stdin=stdin, sample_rss=sample_rss)


def python_c(code: str) -> Run:
    return run([sys.executable, "-c", code])


def timed(f: Callable[[], Any]) -> float:
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------- baselines

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
