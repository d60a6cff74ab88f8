"""The long-running process (issue 18 item 2): ``pgf record`` answered by ``pgf daemon``, and one
record inside ``pgf shell``. Each against its baseline, in interleaved rounds, on the imported store."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import data
from baselines import json_rows
from fig_import import imported_store
from figures import Context, Figure, group, median, plain_figure, ratio_figure
from harness import Run, _env, _pgf_argv, interleave, pgf, python_c, run


@contextmanager
def daemon(url: str) -> Iterator[None]:
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


class DaemonSwitch:
    """A ``pgf daemon`` on a store, started and stopped between the samples of interleaved rounds (never
    timed), so one round can measure a command both in its own process and answered by the daemon."""

    def __init__(self, url: str, warm: Callable[[], object] | None = None):
        self.url, self.warm = url, warm
        self.proc: subprocess.Popen[str] | None = None

    def on(self) -> None:
        if self.proc is None:
            self.proc = subprocess.Popen([*_pgf_argv(), "--db", self.url, "daemon"], stderr=subprocess.PIPE,
                                         text=True, env=_env())
            assert self.proc.stderr is not None
            line = self.proc.stderr.readline()
            if "serving" not in line:
                raise RuntimeError(f"pgf daemon did not start: {line}{self.proc.stderr.read()[-2000:]}")
            if self.warm:  # its first command loads that command's modules: a steady daemon has them
                self.warm()

    def off(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
            self.proc = None


def _baseline_table(db: Path) -> bytes:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, data BLOB)")
    return json_rows([280])[0][0]


@group("resident", order=25, help="pgf record answered by pgf daemon; one record inside pgf shell")
def resident_figures(ctx: Context) -> list[Figure]:
    ctx.say("resident: pgf record answered by pgf daemon; records inside pgf shell")
    url, db = imported_store(ctx)  # patients with a lab history (200 events each at full size)
    payload = _baseline_table(db)
    code = (f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
            f"c.execute('INSERT INTO bench_baseline (data) VALUES (?)', ({payload.decode()!r},)); c.commit()")
    days = iter(range(600, 20_000))

    def record() -> Run:
        day = (data.ENROLLED_ON + timedelta(days=next(days))).isoformat()
        return pgf(url, "record", "lab", "P00002", "--date", day, "--anc", "0.8", "--plt", "40")

    with daemon(url):
        record(), python_c(code)  # warm up (not counted)
        rounds = interleave(max(ctx.rounds, ctx.size(9, 3)), {"baseline": lambda: python_c(code), "engine": record})
    figures = [ratio_figure(ctx, "one pgf record lab process, answered by pgf daemon", rounds, unit="s", target=4,
                            higher=False, note="baseline: python -c that opens the DB and inserts one row")]

    # The shell: a visit sheet for typical patients (80 events each, like the status figure's), ten a
    # round, each getting a tenth of the lines; fresh patients every round.
    records, typical, per_round = ctx.size(200, 40), 80, 10
    shell_db = ctx.tmp / "shell.db"
    shell_url = f"sqlite:///{shell_db}"
    ctx.say(f"  shell: {per_round * ctx.rounds} patients of {typical} events (not timed)")
    for n in range(per_round * ctx.rounds):
        data.long_patient(shell_url, f"T{n:04d}", typical)
    shell_payload = _baseline_table(shell_db)
    empty, sheet = ctx.tmp / "shell-empty.txt", ctx.tmp / "shell-sheet.txt"
    empty.write_text("")
    round_no = iter(range(1000))

    def shell() -> float:
        r = next(round_no)
        subjects = [f"T{r * per_round + k:04d}" for k in range(per_round)]
        day = (data.ENROLLED_ON + timedelta(days=200)).isoformat()
        sheet.write_text("".join(f"record lab {subjects[i % per_round]} --date {day} --anc 0.8 --plt 40\n"
                                 for i in range(records)))
        start_up = run([*_pgf_argv(), "--db", shell_url, "shell"], stdin=empty).seconds
        return (run([*_pgf_argv(), "--db", shell_url, "shell"], stdin=sheet).seconds - start_up) / records

    def bare() -> float:
        conn = sqlite3.connect(shell_db, isolation_level=None)
        started = time.perf_counter()
        for _ in range(records):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_baseline (data) VALUES (?)", (shell_payload,))
            conn.execute("COMMIT")
        conn.close()
        return (time.perf_counter() - started) / records

    rounds = interleave(ctx.rounds, {"engine": shell, "baseline": bare})
    per, base = median(rounds.samples["engine"]), median(rounds.samples["baseline"])
    figures.append(plain_figure(
        "one record inside pgf shell (each committed)", per * 1000, "ms", "≤ 2 ms", per <= 0.002,
        note=f"{records} lab lines on stdin for {per_round} patients of {typical} events, minus the shell's start-up; "
             f"a bare insert + synced commit per row in one process takes {base * 1000:.2f} ms ({per / base:.1f}×)",
        load_before=rounds.load_before, load_after=rounds.load_after, rounds=len(rounds.samples["engine"])))
    return figures
