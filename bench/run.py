#!/usr/bin/env python3
"""pgf-events benchmark: every figure measured together with its baseline, in one run.

    python bench/run.py            # the full run (1M-event log; a few minutes on 2 cores)
    python bench/run.py --quick    # everything scaled down
    python bench/run.py --json     # the table on stderr, {"machine", "load", "figures": [...]} on stdout
    python bench/run.py --only log --only record    # some groups (--list names them)

Data are generated fresh in a temporary folder (bench/data.py) and generation is never timed. Each
engine figure runs the real ``pgf`` command in its own process, in interleaved rounds with its
baseline (bench/harness.py); the figure is the median. Per-core figures pin engine and baseline to
one core. The load average is recorded before and after each figure and for the whole run. In
--quick, a figure whose fixed costs are 10% or more of its time is shown as indicative, not judged.
The figures live in bench/fig_*.py (see bench/README.md, "Adding a figure").
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from figures import GROUPS, Context, Figure, plain_figure, table  # noqa: E402
from harness import PYCACHE, load, machine, pgf, python_c  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def load_groups() -> None:
    """Import every bench/fig_*.py: each registers its groups."""
    for path in sorted(HERE.glob("fig_*.py")):
        importlib.import_module(path.stem)


def warm_up(tmp: Path) -> None:
    """Compile every module the children will load into the run's bytecode cache (not timed)."""
    pgf(f"sqlite:///{tmp}/warm.db", "--help")  # lists every command: imports every CLI module
    python_c("import json, sqlite3, hashlib, pgf_events.projections.queries, pgf_events.projections.store, "
             "pgf_events.audit.verify, pgf_events.audit.recorders_postgres, pgf_events.cli.batch")


def _load_text(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def main() -> None:
    load_groups()
    names = [g.name for g in sorted(GROUPS.values(), key=lambda g: (g.order, g.name))]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scale everything down")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per figure (default 3, at least 1)")
    parser.add_argument("--postgres", default=os.environ.get("PGF_BENCH_POSTGRES_URL")
                        or os.environ.get("PGF_TEST_POSTGRES_URL") or DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--only", action="append", default=[], choices=names, metavar="GROUP",
                        help=f"run only these figure groups: {', '.join(names)}")
    parser.add_argument("--list", action="store_true", help="list the figure groups and exit")
    args = parser.parse_args()
    if args.list:
        for name in names:
            print(f"{name:12} {GROUPS[name].help}")
        return
    wanted = [n for n in names if not args.only or n in args.only]
    say = (lambda m: print(m, file=sys.stderr, flush=True))
    info = machine()
    start_load = load()
    say(f"machine: {info['description']}; load average {_load_text(start_load)}")
    started = time.perf_counter()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="pgf-bench-") as tmpdir:
        tmp = Path(tmpdir)
        PYCACHE[:] = [str(tmp / "pycache")]
        warm_up(tmp)
        ctx = Context(tmp, args.quick, max(1, args.rounds), args.postgres, say)
        for name in wanted:
            try:
                figures.extend(GROUPS[name].measure(ctx))
            except Exception as exc:  # noqa: BLE001 - one group failing must not lose the others' figures
                say(f"{name}: failed: {type(exc).__name__}: {str(exc)[:300]}")
                figures.append(plain_figure(f"{name} (group failed)", None, "-", "-", False,
                                            note=f"{type(exc).__name__}: {str(exc)[:200]}"))
    end_load = load()
    elapsed = time.perf_counter() - started
    say(f"done in {elapsed:.0f} s")
    header = (f"{'quick run' if args.quick else 'full run'} on {info['description']}\n"
              f"load average (1/5/15 min): {_load_text(start_load)} at the start, {_load_text(end_load)} at the end; "
              f"{max(1, args.rounds)} interleaved rounds per figure (median); {elapsed:.0f} s")
    report = f"{header}\n{table(figures)}"
    if args.json:  # stdout holds the JSON document only; the table goes to stderr
        say(report)
        print(json.dumps({"machine": info, "quick": args.quick, "rounds": max(1, args.rounds), "seconds": elapsed,
                          "load": {"start": start_load, "end": end_load},
                          "figures": [f.as_json() for f in figures]}))
    else:
        print(report)


if __name__ == "__main__":
    main()
