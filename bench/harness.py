"""bench/run.py's harness: the machine and its load, running ``pgf`` in a measured process (optionally
pinned to one core), and interleaved rounds.

Interleaved rounds: every figure is measured ``rounds`` times (≥ 3 in a full run) and each round runs
the engine, its baseline and any other sample of the figure one after the other, the order rotating
from round to round, so a change in the machine's load hits engine and baseline alike. The figure is
the median of the rounds.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def load() -> tuple[float, float, float]:
    """The load average (1, 5, 15 minutes); zeros where the OS has none."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def one_core() -> set[int] | None:
    """The core the per-core figures run on (engine and baseline alike), or None if this OS cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return {min(os.sched_getaffinity(0))}


@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run this thread (an in-process baseline) on ``cpus`` only, then as before."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


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
    seconds: float  # wall time
    max_rss_mb: float  # peak of the process and its children together (with sample_rss)
    stdout: str
    cpu_seconds: float = 0.0  # user + system time of the process and the children it waited for


def run(argv: list[str], *, stdin: Path | None = None, sample_rss: bool = False, cpus: set[int] | None = None) -> Run:
    """Run a process to completion: wall time, CPU time, peak RSS, stdout; raise if it fails.

    ``cpus``: run it (and whatever it starts) on these cores only, e.g. :func:`one_core` for a per-core
    figure. With ``sample_rss``, peak RSS is the sum over the process and its descendants (worker
    processes count too) of each one's own peak (``VmHWM``), read every 10 ms: an upper bound of the
    tree's peak, as the peaks need not coincide. Not ``wait4``'s ru_maxrss: on Linux a child started by
    vfork (as subprocess does) inherits the *parent's* high-water mark at exec, so after this
    process generated a million events it would report this process's size, not the child's.
    """
    stdin_file = stdin.open("rb") if stdin else subprocess.DEVNULL
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            preexec_fn=preexec)
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
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    if stdin:
        stdin_file.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {chunks['err'].decode()[-2000:]}")
    return Run(seconds, sum(peaks.values()) / 1024 if sample_rss else 0.0, chunks["out"].decode(),
               usage.ru_utime + usage.ru_stime)


def pgf(url: str, *args: str, stdin: Path | None = None, sample_rss: bool = False, cpus: set[int] | None = None) -> Run:
    return run([*_pgf_argv(), "--db", url, *args], stdin=stdin, sample_rss=sample_rss, cpus=cpus)


def python_c(code: str, *, cpus: set[int] | None = None) -> Run:
    return run([sys.executable, "-c", code], cpus=cpus)


def timed(f: Callable[[], Any]) -> float:
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------- rounds

@attrs.define
class Rounds:
    """The samples of a figure's interleaved rounds: seconds per sample name, and the load around them."""

    samples: dict[str, list[float]]
    load_before: float
    load_after: float
    runs: dict[str, list[Run]] = attrs.field(factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def interleave(rounds: int, steps: dict[str, Callable[[], float | Run]]) -> Rounds:
    """Run every step once per round, the order rotating by one each round (round 0: a, b, c; round 1:
    b, c, a; ...). A step returns seconds, or a :class:`Run` (its wall time counts; the run is kept)."""
    names = list(steps)
    out = Rounds({n: [] for n in names}, load()[0], 0.0)
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            result = steps[name]()
            if isinstance(result, Run):
                out.runs.setdefault(name, []).append(result)
                result = result.seconds
            out.samples[name].append(result)
    out.load_after = load()[0]
    return out
