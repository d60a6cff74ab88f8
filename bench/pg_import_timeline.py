"""Where the wall time of a PostgreSQL ``pgf import`` goes: the importer's CPU, the server's, the waits.

    python bench/pg_import_timeline.py [--postgres URL] [--events N] [--rounds R] [--chunk C] [--triggers V]

Each round makes a store as the bench does (``data.import_store``: 500 enrolled patients, N lab lines;
set-up not timed) in a throw-away schema, runs ``pgf import`` in this process and prints one JSON line:
``wall`` (the command), ``bulk_wall`` (the bulk transaction), ``bulk_cpu`` (this process's CPU in it,
every thread: ``time.process_time``), ``backend_cpu`` (the import's server process, from ``/proc``: run
it on the server's machine), ``wait`` (the importing thread blocked on the mover: handing a chunk over
and the last chunk's move) and the load average. ``--triggers`` makes the store with that notary
version (``ChainedPostgresRecorder.new_store_triggers``); ``--chunk`` sets ``pgf_events.bulk.CHUNK``.
With ``PYTHONPATH`` naming another checkout, the same script measures that code (A/B).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

import data
from pgf_events.audit import recorders_postgres as rp

PID: dict[str, float] = {}
T: dict[str, float] = {"wait": 0.0, "chunks": 0}


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def instrument() -> None:
    """Time the mover's waits and read the import's backend CPU (whichever mover this code has)."""
    def timed(cls: Any, name: str) -> None:
        orig = getattr(cls, name)

        def f(self: Any, *a: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return orig(self, *a)
            finally:
                T["wait"] += time.perf_counter() - t0
        setattr(cls, name, f)

    cls = rp._Mover
    for name in ("wait", "submit"):
        if hasattr(cls, name):
            timed(cls, name)
    orig_init = cls.__init__

    def init(self: Any, connection: Any, *a: Any) -> None:
        PID["pid"] = connection.info.backend_pid
        PID["cpu0"], PID["t0"], PID["p0"] = cpu_of(connection.info.backend_pid), time.perf_counter(), time.process_time()
        orig_init(self, connection, *a)
    cls.__init__ = init  # type: ignore[method-assign]
    orig_bulk = rp.ChainedPostgresRecorder.bulk

    @contextmanager
    def bulk(self: Any) -> Iterator[Callable[..., None] | None]:
        with orig_bulk(self) as insert:
            def counted(events: Any) -> None:
                T["chunks"] += 1
                insert(events)  # type: ignore[misc]
            yield counted
        PID["cpu1"], PID["t1"], PID["p1"] = cpu_of(int(PID["pid"])), time.perf_counter(), time.process_time()
    rp.ChainedPostgresRecorder.bulk = bulk  # type: ignore[method-assign]


def one(base: str, events: int) -> dict[str, Any]:
    from pgf_events.cli import main

    schema = "timeline_" + uuid.uuid4().hex[:8]
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    lines = Path(f"/tmp/{schema}.jsonl")
    data.import_store(url, lines, patients=500, events=events)
    PID.clear()
    T.update(wait=0.0, chunks=0)
    load = os.getloadavg()[0]
    w0, p0 = time.perf_counter(), time.process_time()
    sys.argv = ["pgf", "--db", url, "import", str(lines)]
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
    w1, p1 = time.perf_counter(), time.process_time()
    lines.unlink()
    with psycopg.connect(base.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return {"wall": round(w1 - w0, 3), "cpu": round(p1 - p0, 3), "bulk_wall": round(PID["t1"] - PID["t0"], 3),
            "bulk_cpu": round(PID["p1"] - PID["p0"], 3), "backend_cpu": round(PID["cpu1"] - PID["cpu0"], 3),
            "wait": round(T["wait"], 3), "chunks": T["chunks"], "load": [round(load, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("PGF_BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--chunk", type=int)
    parser.add_argument("--triggers")
    args = parser.parse_args()
    if args.chunk:
        import pgf_events.bulk

        pgf_events.bulk.CHUNK = args.chunk
    if args.triggers:
        rp.ChainedPostgresRecorder.new_store_triggers = args.triggers
    instrument()
    for _ in range(args.rounds):
        print(json.dumps(one(args.postgres, args.events)), file=sys.__stdout__, flush=True)


if __name__ == "__main__":
    main()
