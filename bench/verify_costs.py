"""Where ``pgf audit verify`` spends its time beyond its baseline, on a store file of yours.

    python bench/verify_costs.py STORE.db [--events N] [--rounds R]

Runs on one core (the one it starts on), in interleaved rounds, over the first N events of the log
(default: all), and prints the medians of:

- the baseline's select (the payload only) and the engine's (stream id, version, topic, payload and
  the stored link, joined by position, as ``audit/fastverify.py`` reads them);
- the baseline's whole loop (select + chained SHA-256 of the payloads) and the engine's
  (:func:`pgf_events.audit.fastverify.check_segment` over the same events, as verify runs it on one core);
- hashing in memory, chained: the payloads alone against the link material (what the chain hashes:
  stream id, version, topic and lengths beside the payload; :func:`pgf_events.audit.chain.link_material`).

The material measured is checked to be the chain's own (hashed from GENESIS it gives the stored link
at position N; a tampered log is refused). Nothing is written; the store is opened read-only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import time
from collections.abc import Callable

from pgf_events.audit import fastverify
from pgf_events.audit.chain import GENESIS, link_material
from pgf_events.audit.recorders import _oid

CHAIN = "pgf_chain"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a pgf SQLite store file")
    parser.add_argument("--events", type=int, default=0, help="the first N events (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    conn = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    stop = args.events or conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0] or 0

    def read(columns: str, join: str = "") -> Callable[[], None]:
        def run() -> None:
            cur = conn.execute(f"SELECT {columns} FROM stored_events e {join} WHERE e.rowid <= ? ORDER BY e.rowid",
                               (stop,))
            while cur.fetchmany(fastverify.FETCH):
                pass
        return run

    def baseline() -> None:
        digest, sha256 = GENESIS, hashlib.sha256
        for (state,) in conn.execute("SELECT state FROM stored_events WHERE rowid <= ? ORDER BY rowid", (stop,)):
            digest = sha256(digest + state).digest()

    def engine() -> None:
        if fastverify.check_segment(conn, "stored_events", CHAIN, 0, stop, frozenset()) is None:
            raise SystemExit("the engine's fast path gave up: is the log intact? (pgf audit verify)")

    rows = conn.execute("SELECT originator_id, originator_version, topic, state FROM stored_events "
                        "WHERE rowid <= ? ORDER BY rowid", (stop,)).fetchall()
    payloads = [r[3] for r in rows]
    materials = [link_material(_oid(oid), version, topic, state) for oid, version, topic, state in rows]
    del rows

    def chained(items: list[bytes]) -> Callable[[], bytes]:
        def run() -> bytes:
            digest, sha256 = GENESIS, hashlib.sha256
            for item in items:
                digest = sha256(digest + item).digest()
            return digest
        return run

    # The material measured is the chain's own: hashed from GENESIS it gives the stored link at ``stop``.
    link = conn.execute(f"SELECT hash FROM {CHAIN} WHERE position = ?", (stop,)).fetchone()
    if link is None or chained(materials)() != link[0]:
        raise SystemExit(f"the link material of the first {stop:,} events does not give the stored link at "
                         f"position {stop}: is the log intact and born chained? (pgf audit verify)")

    steps: dict[str, Callable[[], object]] = {
        "select the payload (baseline's read)": read("e.state"),
        "select five columns, link joined (engine's read)": read(
            "e.originator_id, e.originator_version, e.topic, e.state, c.hash",
            f"LEFT JOIN {CHAIN} c ON c.position = e.rowid"),
        "baseline: select + chained SHA-256": baseline,
        "engine: fastverify.check_segment (one core)": engine,
        "hash the payloads in memory": chained(payloads),
        "hash the link material in memory": chained(materials),
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # the order rotates each round
            started = time.perf_counter()
            steps[name]()
            samples[name].append(time.perf_counter() - started)
    size = sum(map(len, payloads)) / max(1, len(payloads)), sum(map(len, materials)) / max(1, len(materials))
    print(f"{stop:,} events (their link material chains to the stored link at position {stop}); payload {size[0]:.0f} bytes, link material {size[1]:.0f} bytes on average; "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, values in samples.items():
        print(f"  {name:52s} {statistics.median(values):7.3f} s")


if __name__ == "__main__":
    main()
