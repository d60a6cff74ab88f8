"""What the PostgreSQL notary costs the server, triggers version 1 (row trigger) against 2 and 3 (statement-level).

    python bench/notary_costs.py [--postgres URL] [--rows N] [--rounds R]

Same code, same server: each round makes a store of each version in a throw-away schema (the owner's
URL, e.g. the ``postgres`` superuser; ``ChainedPostgresRecorder.new_store_triggers``), alternating
which goes first, and prints for each:

- the backend's CPU (``/proc``, so run it on the server's machine) and wall time of moving N rows
  (default 100,000) in one transaction, ``jit`` and ``enable_seqscan`` off, chunks of 2,000 rows made
  in a temporary table (not timed) and moved by ``INSERT ... SELECT`` (an import sends each chunk's
  rows as arrays in that statement: the triggers' work is the same); then the
  notary functions' own time in a second such move with ``track_functions = 'all'`` (which slows it;
  a superuser's setting: skipped for other logins);
- the median latency of 3,000 single-row ``INSERT`` statements, each its own transaction.

The rows are store-wide events of an unknown topic (no site to look up; the application never reads
them). The schemas are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import psycopg

from pgf_events.application import TrialConduct
from pgf_events.audit.recorders_postgres import ChainedPostgresRecorder
from pgf_events.projections.provision import finish_if_created
from pgf_events.store import parse_url

CHUNK = 2000
ROW = ("INSERT INTO pgf_events (originator_id, originator_version, topic, state) "
       "VALUES (%s, %s, 'bench:Thing', '{\"anc\":1.2}')")


def store(url: str, triggers: str) -> str:
    schema = "notary_" + uuid.uuid4().hex[:10]
    ChainedPostgresRecorder.new_store_triggers = triggers
    finish_if_created(TrialConduct(parse_url(f"{url}?schema={schema}", cipher_key=""))).close()
    return schema


def backend_cpu(conn: Any) -> float:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def move(url: str, schema: str, rows: int, first: int, track: bool) -> tuple[float, float, list[Any]]:
    """(wall, backend CPU) of moving ``rows`` rows in chunks, and the functions' statistics if ``track``."""
    with psycopg.connect(url) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for setting in ("enable_seqscan = off", "jit = off") + (("track_functions = 'all'",) if track else ()):
            conn.execute(f"SET LOCAL {setting}")
        conn.execute("CREATE TEMP TABLE chunk (seq bigserial, originator_id uuid, originator_version bigint, "
                     "topic text, state bytea) ON COMMIT DROP")
        wall = cpu = 0.0
        for start in range(first, first + rows, CHUNK):
            conn.execute("INSERT INTO chunk (originator_id, originator_version, topic, state) SELECT "
                         "('00000000-0000-0000-0000-' || lpad((v %% 500)::text, 12, '0'))::uuid, v, 'bench:Lab', "
                         "convert_to('{\"anc\":' || v || ',\"pad\":\"' || repeat('x', 180) || '\"}', 'UTF8') "
                         "FROM generate_series(%s::bigint, %s::bigint) v", (start, start + CHUNK - 1))
            cpu0, wall0 = backend_cpu(conn), time.perf_counter()
            conn.execute("INSERT INTO pgf_events (originator_id, originator_version, topic, state) "
                         "SELECT originator_id, originator_version, topic, state FROM chunk ORDER BY seq")
            wall, cpu = wall + time.perf_counter() - wall0, cpu + backend_cpu(conn) - cpu0
            conn.execute("TRUNCATE chunk")
        functions = conn.execute("SELECT funcname, calls, round(self_time) FROM pg_stat_xact_user_functions "
                                 "WHERE funcname LIKE 'pgf_notarise%%' ORDER BY 1").fetchall() if track else []
    return wall, cpu, functions


def superuser(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0])


def single_rows(url: str, schema: str, count: int = 3000) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        stream, times = uuid.uuid4(), []
        for version in range(1, count + 1):
            started = time.perf_counter()
            conn.execute(ROW, (stream, version))
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("PGF_BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for n in range(args.rounds):
        for triggers in ("1", "2", "3") if n % 2 == 0 else ("3", "2", "1"):
            schema, load = store(args.postgres, triggers), os.getloadavg()[0]
            try:
                wall, cpu, _ = move(args.postgres, schema, args.rows, 1, track=False)
                _, _, functions = move(args.postgres, schema, args.rows, args.rows + 1, track=superuser(args.postgres))
                latency = single_rows(args.postgres, schema)
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            own = ", ".join(f"{name} {float(ms) / 1000:.2f} s" for name, _, ms in functions) or "(not a superuser)"
            print(f"round {n + 1}, triggers version {triggers}: move of {args.rows:,} rows {wall:.2f} s, "
                  f"backend CPU {cpu:.2f} s; functions' own time {own}; single-row INSERT median {latency:.0f} µs; "
                  f"load {load:.2f}", flush=True)


if __name__ == "__main__":
    main()
