#!/usr/bin/env python3
"""pgf-events benchmark: every figure of issue 6 measured together with its baseline, in one run.

    python bench/run.py            # the full run (1M-event log; ~3 minutes on 2 cores)
    python bench/run.py --quick    # everything scaled down: ~15 s
    python bench/run.py --json     # also print {"machine": ..., "figures": [...]} as the last line

Data are generated fresh in a temporary folder (bench/data.py) and generation is never timed.
Each engine figure runs the real ``pgf`` command in its own process (wall time; peak RSS from
``wait4``), right after its baseline on the same data: Python's ``sqlite3`` directly (raw psycopg
for PostgreSQL). See bench/README.md for what each baseline does and the latest results.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import data  # noqa: E402
from harness import (  # noqa: E402
    PYCACHE,
    Run,
    baseline_select_chain,
    baseline_select_loads,
    baseline_sqlite_insert,
    json_rows,
    machine,
    pgf,
    python_c,
    stored_sizes,
    timed,
)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@attrs.frozen
class Sizes:
    import_events: int
    import_patients: int
    log_events: int  # the rebuild / verify log
    small_log_events: int  # the other end of the scale figure
    status_events: int
    process_runs: int  # pgf record / pgf status: median of this many processes
    pg_import_events: int
    follow_events: int


FULL = Sizes(100_000, 500, 1_000_000, 100_000, 5_000, 9, 100_000, 300)
QUICK = Sizes(5_000, 50, 20_000, 2_000, 500, 3, 2_000, 20)


@attrs.define
class Figure:
    figure: str
    value: float | None
    unit: str
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "value": self.value, "unit": self.unit, "baseline": self.baseline,
                "ratio": self.ratio, "target": self.target, "met": self.met, "note": self.note}


# ---------------------------------------------------------------------------------------- figures

def ratio_figure(name: str, value: float, baseline: float, unit: str, target: float, *, higher: bool,
                 note: str = "") -> Figure:
    ratio = value / baseline if baseline else None
    if higher:
        met = ratio is not None and ratio >= target
        text = f"≥ {target:g}×"
    else:
        met = ratio is not None and ratio <= target
        text = f"≤ {target:g}×"
    return Figure(name, value, unit, baseline, ratio, text, met, note)


def fig_import(tmp: Path, s: Sizes) -> Figure:
    url, db, lines = f"sqlite:///{tmp}/import.db", tmp / "import.db", tmp / "labs.jsonl"
    data.import_store(url, lines, patients=s.import_patients, events=s.import_events)
    before = sqlite3.connect(db).execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
    engine = pgf(url, "import", str(lines))
    sizes = stored_sizes(db, before)  # the import's own events (labs + the import batch)
    base = baseline_sqlite_insert(tmp / "baseline_insert.db", json_rows(sizes))
    return ratio_figure(f"pgf import, {s.import_events:,} lab events / {s.import_patients} patients (SQLite)",
                        s.import_events / engine.seconds, len(sizes) / base, "events/s", 0.10, higher=True,
                        note="baseline: executemany of equally sized JSON rows, one transaction")


def fig_rebuild(url: str, db: Path, events: int) -> tuple[Figure, Run]:
    base, count = baseline_select_loads(db)
    engine = pgf(url, "projections", "rebuild", "--json", sample_rss=True)
    figure = ratio_figure(f"projection rebuild, all projections, {events:,} events", events / engine.seconds,
                          count / base, "events/s", 0.25, higher=True,
                          note=f"baseline: select + json.loads; peak RSS {engine.max_rss_mb:.0f} MB")
    return figure, engine


def fig_verify(url: str, db: Path, events: int) -> Figure:
    base, count = baseline_select_chain(db)
    engine = pgf(url, "audit", "verify", "--json")
    result = json.loads(engine.stdout)
    if not result["ok"] or result["events"] != count:
        raise RuntimeError(f"verify did not pass over every event: {result}")
    return ratio_figure(f"pgf audit verify, {events:,} events", events / engine.seconds, count / base,
                        "events/s", 0.5, higher=True, note="baseline: select + chained SHA-256 of the payloads")


def fig_record(tmp: Path, s: Sizes) -> Figure:
    url, db = f"sqlite:///{tmp}/import.db", tmp / "import.db"  # the imported store: 500 patients with history
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, data BLOB)")
    payload = json_rows([280])[0][0].decode()
    code = (f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
            f"c.execute('INSERT INTO bench_baseline (data) VALUES (?)', ({payload!r},)); c.commit()")
    engine, base = [], []
    for n in range(-1, s.process_runs):  # run -1 warms the OS caches up and is not counted
        base_run = python_c(code).seconds
        day = (data.ENROLLED_ON + timedelta(days=300 + n)).isoformat()
        engine_run = pgf(url, "record", "lab", "P00001", "--date", day, "--anc", "0.8", "--plt", "40").seconds
        if n >= 0:
            base.append(base_run)
            engine.append(engine_run)
    return ratio_figure("one pgf record lab process", statistics.median(engine), statistics.median(base), "s",
                        4, higher=False, note=f"median of {s.process_runs}; baseline: python -c that opens the DB "
                                              "and inserts one row")


def fig_resident(tmp: Path, s: Sizes) -> list[Figure]:
    """pgf record answered by a running pgf daemon, and one record inside pgf shell (bench/resident.py)."""
    import resident

    value, base = resident.record_via_daemon(tmp, s.process_runs)
    daemon = ratio_figure("one pgf record lab process, answered by pgf daemon", value, base, "s", 4, higher=False,
                          note=f"median of {s.process_runs}; the same baseline as the plain record")
    records = 200 if s is FULL else 40
    per, bare = resident.per_record_in_shell(tmp, records)
    shell = Figure("one record inside pgf shell (each committed)", per * 1000, "ms", bare * 1000, per / bare,
                   "≤ 2 ms", per <= 0.002,
                   note=f"{records} lab lines on stdin minus the shell's start-up, median of 3; baseline: a bare "
                        "insert + commit (synced) per row in one process")
    return [daemon, shell]


def fig_status(tmp: Path, s: Sizes) -> Figure:
    url, db, subject = f"sqlite:///{tmp}/status.db", tmp / "status.db", "L0001"
    data.long_patient(url, subject, s.status_events)
    pgf(url, "status", subject)  # warm the OS caches up (not timed)
    from pgf_events.domain.patient import patient_id  # noqa: PLC0415

    stream = patient_id(subject).hex
    code = (f"import sqlite3, json; c = sqlite3.connect({str(db)!r}); "
            f"[json.loads(s) for (s,) in c.execute('SELECT state FROM stored_events WHERE originator_id = ? "
            f"ORDER BY originator_version', ({stream!r},))]")
    engine, base = [], []
    for n in range(s.process_runs):
        # A coordinator records, then asks for the status: the read models have one event to catch up.
        day = (data.ENROLLED_ON + timedelta(days=2000 + n)).isoformat()
        pgf(url, "record", "lab", subject, "--date", day, "--anc", "0.8")
        base.append(python_c(code).seconds)
        engine.append(pgf(url, "status", subject, "--json").seconds)
    return ratio_figure(f"pgf status of a patient with {s.status_events:,} events (after a new record)",
                        statistics.median(engine), statistics.median(base), "s", 5, higher=False,
                        note=f"median of {s.process_runs}; baseline: python -c select + json.loads of the patient's rows")


def fig_scale(small: Run, large: Run, s: Sizes) -> list[Figure]:
    ratio = large.seconds / small.seconds
    ideal = s.log_events / s.small_log_events
    return [
        Figure(f"scale: rebuild time {s.log_events:,} / {s.small_log_events:,} events", ratio, "×", None, None,
               f"≤ {ideal * 1.1:g}", ratio <= ideal * 1.1,
               note=f"{small.seconds:.2f} s vs {large.seconds:.2f} s"),
        Figure(f"scale: rebuild peak RSS, {s.log_events:,} events", large.max_rss_mb, "MB", None, None, "≤ 300 MB",
               large.max_rss_mb <= 300, note=f"{small.max_rss_mb:.0f} MB at {s.small_log_events:,} events"),
    ]


# ---------------------------------------------------------------------------------------- PostgreSQL

def _pg_connect(url: str, **kw: Any) -> Any:
    import psycopg  # noqa: PLC0415

    from pgf_events.store import parse_url  # noqa: PLC0415

    e = parse_url(url, cipher_key="").env
    return psycopg.connect(dbname=e["POSTGRES_DBNAME"], host=e["POSTGRES_HOST"], port=e["POSTGRES_PORT"],
                           user=e["POSTGRES_USER"], password=e["POSTGRES_PASSWORD"] or None, **kw)


def postgres_answers(url: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        with _pg_connect(url, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL, say why
        return f"{type(exc).__name__}: {str(exc).strip()[:100]}"


def fig_pg_import(tmp: Path, s: Sizes, base_url: str) -> Figure:
    name = f"pgf import, {s.pg_import_events:,} lab events (PostgreSQL)"
    why = postgres_answers(base_url)
    if why:
        return Figure(name, None, "events/s", None, None, "report", None, note=f"skipped: {base_url} does not answer ({why})")
    schema = "bench_" + uuid.uuid4().hex[:10]
    url = f"{base_url}{'&' if '?' in base_url else '?'}schema={schema}"
    lines = tmp / "pg_labs.jsonl"
    try:
        data.import_store(url, lines, patients=s.import_patients, events=s.pg_import_events)
        with _pg_connect(base_url) as conn:
            before = conn.execute(f'SELECT MAX(notification_id) FROM "{schema}".pgf_events').fetchone()[0]
        engine = pgf(url, "import", str(lines))
        with _pg_connect(base_url) as conn:
            sizes = [n for (n,) in conn.execute(
                f'SELECT octet_length(state) FROM "{schema}".pgf_events WHERE notification_id > %s', (before,))]
            rows = json_rows(sizes)
            conn.execute(f'CREATE TABLE "{schema}".bench_baseline (id bigserial PRIMARY KEY, data bytea)')
            conn.commit()

            def write() -> None:
                with conn.cursor() as cur:
                    cur.executemany(f'INSERT INTO "{schema}".bench_baseline (data) VALUES (%s)', rows)
                conn.commit()

            base = timed(write)
    finally:
        with _pg_connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    value, baseline = s.pg_import_events / engine.seconds, len(sizes) / base
    return Figure(name, value, "events/s", baseline, value / baseline, "report", None,
                  note="baseline: psycopg executemany of equally sized rows, one transaction")


def fig_follow_lag(s: Sizes, base_url: str) -> list[Figure]:
    """Commit-to-follower lag, measured by bench/follow_lag.py (the change feed's own benchmark)."""
    path = HERE / "follow_lag.py"
    target = "p99 ≤ 200 ms"
    if not path.exists():
        return [Figure("follow lag p99", None, "ms", None, None, target, None,
                       note="not measured here: see bench/follow_lag.py (the change feed's benchmark)")]
    try:
        spec = importlib.util.spec_from_file_location("follow_lag", path)
        assert spec is not None and spec.loader is not None
        lag = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lag)
        figures = []
        rate = 20.0
        if not postgres_answers(base_url):
            pg = lag._postgres(base_url)
            url, schema = pg
            try:
                lags = lag.measure_follow(url, s.follow_events, rate)
                base = lag.baseline_listen_notify(base_url, s.follow_events, rate)
            finally:
                lag._drop(base_url, schema)
            figures.append(_lag_figure("follow lag p99, PostgreSQL (LISTEN/NOTIFY)", lag, lags, base, target))
        with tempfile.TemporaryDirectory() as tmp:
            lags = lag.measure_follow(f"sqlite:///{tmp}/follow.db", s.follow_events, rate)
            base = lag.baseline_polling(Path(tmp) / "poll.db", s.follow_events, rate, lag.INTERVAL)
        figures.append(_lag_figure(f"follow lag p99, SQLite (poll {lag.INTERVAL:g} s)", lag, lags, base, target))
        return figures
    except Exception as exc:  # noqa: BLE001 - the feed's benchmark is not ours: report, don't crash the run
        return [Figure("follow lag p99", None, "ms", None, None, target, None,
                       note=f"bench/follow_lag.py failed: {type(exc).__name__}: {str(exc)[:120]}")]


def _lag_figure(name: str, lag: Any, lags: list[float], base: list[float], target: str) -> Figure:
    p99, b99 = lag.pct(lags, 0.99) * 1000, lag.pct(base, 0.99) * 1000
    return Figure(name, p99, "ms", b99, p99 / b99 if b99 else None, target, p99 <= 200,
                  note=f"{len(lags)} events at 20/s; p50 {lag.pct(lags, 0.5) * 1000:.0f} ms")


def warm_up(tmp: Path) -> None:
    """Compile every module the children will load into the run's bytecode cache (not timed)."""
    pgf(f"sqlite:///{tmp}/warm.db", "--help")  # lists every command: imports every CLI module
    python_c("import json, sqlite3, hashlib, pgf_events.projections.queries, pgf_events.projections.store, "
             "pgf_events.audit.verify, pgf_events.audit.recorders_postgres, pgf_events.cli.batch")


# ---------------------------------------------------------------------------------------- output

def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(figures: list[Figure]) -> str:
    head = ["figure", "value", "unit", "baseline", "ratio", "target", "met"]
    rows = [[f.figure, _fmt(f.value), f.unit, _fmt(f.baseline), f"{f.ratio:.3g}×" if f.ratio is not None else "-",
             f.target, {True: "yes", False: "NO", None: "-"}[f.met]] for f in figures]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in [head, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = [f"- {f.figure}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + [""] + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scale everything down (under a minute)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    parser.add_argument("--postgres", default=os.environ.get("PGF_BENCH_POSTGRES_URL")
                        or os.environ.get("PGF_TEST_POSTGRES_URL") or DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--only", action="append", default=[],
                        help="run only these figure groups: import, log, record, status, postgres, follow")
    args = parser.parse_args()
    s = QUICK if args.quick else FULL
    groups = set(args.only) or {"import", "log", "record", "status", "postgres", "follow"}
    say = (lambda m: print(m, file=sys.stderr, flush=True))
    info = machine()
    say(f"machine: {info['description']}")
    started = time.perf_counter()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="pgf-bench-") as tmpdir:
        tmp = Path(tmpdir)
        PYCACHE[:] = [str(tmp / "pycache")]
        warm_up(tmp)
        if "import" in groups or "record" in groups:
            say(f"import: {s.import_events:,} lab events for {s.import_patients} patients")
            figure = fig_import(tmp, s)
            if "import" in groups:
                figures.append(figure)
        if "record" in groups:
            say("record: one pgf record lab process")
            figures.append(fig_record(tmp, s))
            say("record: answered by pgf daemon; inside pgf shell")
            figures.extend(fig_resident(tmp, s))
        if "status" in groups:
            say(f"status: a patient with {s.status_events:,} events")
            figures.append(fig_status(tmp, s))
        if "log" in groups:
            runs = {}
            for events in (s.small_log_events, s.log_events):
                url, db = f"sqlite:///{tmp}/log{events}.db", tmp / f"log{events}.db"
                say(f"log: generating {events:,} events (not timed)")
                t = time.perf_counter()
                data.cohort_log(url, events)
                say(f"     generated in {time.perf_counter() - t:.0f} s; rebuilding")
                figure, runs[events] = fig_rebuild(url, db, events)
                if events == s.log_events:
                    figures.append(figure)
                    say("     verifying")
                    figures.append(fig_verify(url, db, events))
                for suffix in ("", "-wal", "-shm"):  # keep the temp folder small
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
            figures.extend(fig_scale(runs[s.small_log_events], runs[s.log_events], s))
        if "postgres" in groups:
            say("postgres: pgf import")
            figures.append(fig_pg_import(tmp, s, args.postgres))
        if "follow" in groups:
            say("follow: commit-to-follower lag (bench/follow_lag.py)")
            figures.extend(fig_follow_lag(s, args.postgres))
    say(f"done in {time.perf_counter() - started:.0f} s")
    report = f"{'quick run' if args.quick else 'full run'} on {info['description']}\n{table(figures)}"
    if args.json:  # stdout holds the JSON document only; the table goes to stderr
        say(report)
        print(json.dumps({"machine": info, "quick": args.quick, "figures": [f.as_json() for f in figures]}))
    else:
        print(report)


if __name__ == "__main__":
    main()
