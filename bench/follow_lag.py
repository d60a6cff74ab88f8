#!/usr/bin/env python3
"""Commit-to-follower lag of ``pgf follow``: PostgreSQL (LISTEN/NOTIFY) and SQLite (polling).

A writer process records N adverse events at a steady rate and notes the wall-clock time each
commit returned; a ``pgf follow --projection safety`` process prints the changes, and this script
stamps each line as it arrives. Lag = arrival - commit, matched by event reference. The same run
measures a baseline for each mechanism: a bare psycopg LISTEN/NOTIFY (sending NOTIFY to its
receipt) and a bare SQLite polling loop (``SELECT max(rowid)`` at the same interval; its expected
lag is uniform on [0, interval], p50 = interval/2).

    python bench/follow_lag.py            # 300 events at 20/s on each backend
    python bench/follow_lag.py --quick    # 40 events
    python bench/follow_lag.py --postgres postgresql://postgres@127.0.0.1:5432/test

PostgreSQL is skipped, with a message, when the server does not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]
PATIENTS = 5
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
from pgf_events.feed.wakers import DEFAULT_INTERVAL as INTERVAL  # noqa: E402 - pgf follow's polling interval on SQLite

# ------------------------------------------------------------------ the writer process

def _writer(url: str, events: int, rate: float) -> None:
    from pgf_events.application import TrialConduct
    from pgf_events.store import parse_url

    app = TrialConduct(parse_url(url))
    start = time.monotonic() + 0.2
    for i in range(events):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        onset = (date(2025, 3, 1) + timedelta(days=i // PATIENTS % 200)).isoformat()
        ref = app.record("ae", f"B{i % PATIENTS:02d}", {"onset": onset, "term": "nausea", "grade": 1},
                         user=app.acting_user()).ref
        print(f"{ref}\t{time.time():.6f}", flush=True)
    app.close()


def _setup(url: str) -> None:
    from pgf_events.application import TrialConduct
    from pgf_events.store import parse_url

    app = TrialConduct(parse_url(url))
    criteria = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{n}": "no" for n in range(1, 9)}}
    for n in range(PATIENTS):
        s = f"B{n:02d}"
        app.record("register", s, {"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61,
                                   "transplant_date": "2025-01-10"}, user=app.acting_user())
        app.record("consent", s, {"date": "2025-02-18"}, user=app.acting_user())
        app.record("screen", s, {"date": "2025-02-20", "kps": 80, "expected_survival_months": 12,
                                 "criterion": criteria}, user=app.acting_user())
        app.record("enrol", s, {"date": "2025-02-24"}, user=app.acting_user())
    app.close()


# ------------------------------------------------------------------ measuring pgf follow

def measure_follow(url: str, events: int, rate: float) -> list[float]:
    _setup(url)
    env = {k: v for k, v in os.environ.items() if k != "PGF_USER"}
    env.pop("PGF_CIPHER_KEY", None)
    follower = subprocess.Popen([*PGF, "--db", url, "follow", "--projection", "safety"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True)
    arrivals: dict[str, float] = {}
    lines = [0]

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            arrivals[json.loads(line)["event_ref"]] = time.time()
            lines[0] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _wait(lambda: lines[0] >= PATIENTS, 120, "the follower to print the initial rows")
        writer = subprocess.run([sys.executable, __file__, "--writer", url, "--events", str(events),
                                 "--rate", str(rate)], capture_output=True, text=True, env=env, check=True)
        commits = {ref: float(t) for ref, t in (line.split("\t") for line in writer.stdout.splitlines())}
        _wait(lambda: all(ref in arrivals for ref in commits), 60, "every event to reach the follower")
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=30)
    return [arrivals[ref] - commits[ref] for ref in commits]


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


# ------------------------------------------------------------------ baselines

def baseline_listen_notify(url: str, events: int, rate: float) -> list[float]:
    """A bare psycopg LISTEN/NOTIFY: time from sending NOTIFY (autocommit) to the listener receiving it."""
    import psycopg

    from pgf_events.store import parse_url

    e = parse_url(url).env
    kw = {"dbname": e["POSTGRES_DBNAME"], "host": e["POSTGRES_HOST"], "port": e["POSTGRES_PORT"],
          "user": e["POSTGRES_USER"], "password": e["POSTGRES_PASSWORD"] or None, "autocommit": True}
    channel = "bench_" + uuid.uuid4().hex[:8]
    received: list[float] = []
    ready = threading.Event()

    def listen() -> None:
        with psycopg.connect(**kw) as conn:
            conn.execute(f"LISTEN {channel}")
            ready.set()
            for _ in conn.notifies(timeout=30, stop_after=events):
                received.append(time.time())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    sent = []
    with psycopg.connect(**kw) as conn:
        start = time.monotonic()
        for i in range(events):
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent.append(time.time())
            conn.execute(f"NOTIFY {channel}")
    listener.join(timeout=35)
    return [r - s for s, r in zip(sent, received, strict=False)]


def baseline_polling(path: Path, events: int, rate: float, interval: float) -> list[float]:
    """A bare polling loop on a SQLite file: ``SELECT max(rowid)`` every ``interval`` s."""
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at REAL)")
    setup.commit()
    setup.close()
    lags: list[float] = []
    done = threading.Event()

    def poll() -> None:
        conn = sqlite3.connect(path)
        seen = 0
        while not done.is_set() or seen < events:
            for row_id, at in conn.execute("SELECT id, at FROM t WHERE id > ? ORDER BY id", (seen,)).fetchall():
                lags.append(time.time() - at)
                seen = row_id
            time.sleep(interval)
        conn.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    conn = sqlite3.connect(path, isolation_level=None)
    start = time.monotonic()
    for i in range(events):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        conn.execute("INSERT INTO t (at) VALUES (?)", (time.time(),))
    done.set()
    poller.join(timeout=30)
    conn.close()
    return lags


# ------------------------------------------------------------------ reporting

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def row(name: str, lags: list[float], base_name: str, base: list[float]) -> list[str]:
    p50, p99, b50, b99 = pct(lags, 0.5), pct(lags, 0.99), pct(base, 0.5), pct(base, 0.99)
    ms = lambda x: f"{x * 1000:.1f}"
    return [name, str(len(lags)), ms(p50), ms(p99), ms(max(lags)), base_name, ms(b50), ms(b99),
            f"{p50 / b50:.1f}x" if b50 > 0 else "-", f"{p99 / b99:.1f}x" if b99 > 0 else "-"]


def table(rows: list[list[str]]) -> str:
    head = ["backend", "events", "p50 ms", "p99 ms", "max ms", "baseline", "base p50", "base p99",
            "p50 ratio", "p99 ratio"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _postgres(url: str) -> tuple[str, str] | None:
    """A fresh schema on the server, or None (with a message) when it does not answer."""
    try:
        import psycopg

        from pgf_events.store import parse_url

        e = parse_url(url).env
        with psycopg.connect(dbname=e["POSTGRES_DBNAME"], host=e["POSTGRES_HOST"], port=e["POSTGRES_PORT"],
                             user=e["POSTGRES_USER"], password=e["POSTGRES_PASSWORD"] or None, connect_timeout=3):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL, say why
        print(f"PostgreSQL skipped: {url} does not answer ({type(exc).__name__}: {str(exc).strip()[:120]})",
              file=sys.stderr)
        return None
    schema = "bench_" + uuid.uuid4().hex[:10]
    return f"{url}{'&' if '?' in url else '?'}schema={schema}", schema


def _drop(url: str, schema: str) -> None:
    import psycopg

    from pgf_events.store import parse_url

    e = parse_url(url).env
    with psycopg.connect(dbname=e["POSTGRES_DBNAME"], host=e["POSTGRES_HOST"], port=e["POSTGRES_PORT"],
                         user=e["POSTGRES_USER"], password=e["POSTGRES_PASSWORD"] or None, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 events per backend instead of 300")
    parser.add_argument("--events", type=int, help="events per backend")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second (default 20)")
    parser.add_argument("--postgres", default=os.environ.get("PGF_BENCH_POSTGRES_URL")
                        or os.environ.get("PGF_TEST_POSTGRES_URL") or DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON document")
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    events = args.events or (40 if args.quick else 300)
    if args.writer:
        _writer(args.writer, events, args.rate)
        return
    rows, figures = [], {}
    pg = _postgres(args.postgres)
    if pg is not None:
        url, schema = pg
        try:
            lags = measure_follow(url, events, args.rate)
            base = baseline_listen_notify(args.postgres, events, args.rate)
        finally:
            _drop(args.postgres, schema)
        rows.append(row("postgresql (LISTEN/NOTIFY)", lags, "bare LISTEN/NOTIFY", base))
        figures["postgresql"] = {"p50": pct(lags, 0.5), "p99": pct(lags, 0.99), "baseline_p50": pct(base, 0.5),
                                 "baseline_p99": pct(base, 0.99)}
    with tempfile.TemporaryDirectory() as tmp:
        lags = measure_follow(f"sqlite:///{tmp}/bench.db", events, args.rate)
        base = baseline_polling(Path(tmp) / "poll.db", events, args.rate, INTERVAL)
    rows.append(row(f"sqlite (poll {INTERVAL:g} s)", lags, f"bare poll {INTERVAL:g} s", base))
    figures["sqlite"] = {"p50": pct(lags, 0.5), "p99": pct(lags, 0.99), "baseline_p50": pct(base, 0.5),
                         "baseline_p99": pct(base, 0.99), "expected_p50": INTERVAL / 2}
    print(f"commit-to-follower lag, {events} events at {args.rate:g}/s (1 writer process, 1 `pgf follow` "
          f"process; {os.cpu_count()} cores)")
    print(table(rows))
    print(f"sqlite expectation from polling alone: p50 = interval/2 = {INTERVAL / 2 * 1000:.0f} ms, "
          f"p99 ~ interval = {INTERVAL * 1000:.0f} ms")
    if args.json:
        print(json.dumps({"events": events, "rate": args.rate, **figures}))


if __name__ == "__main__":
    main()
