#!/usr/bin/env python3
"""The read models catching up one new event inside ``pgf shell`` (issue 18 item 3, live catch-up).

A patient with 5,000 events (``data.long_patient``); the commands run in one process on one
application, exactly as ``pgf shell`` runs them (``pgf_events.cli._resident.run_captured``): a new lab
of that patient, then ``report dosing --json`` (timed: it catches the event up, then reads). Measured
with the shell's kept folds (``projections/folds.FoldCache``: the new event is folded onto the
patient kept by the previous command) and without (the whole stream read, decoded and folded
again, as a ``pgf`` process does), in two blocks of ``--rounds`` each, the order swapped in the
second; medians. The first report of each block (the shell's first catch-up of that patient) is
not counted.

    python bench/shell_catch_up.py              # 5,000 events, 5 rounds per block
    python bench/shell_catch_up.py --events 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from pgf_events.application import TrialConduct
    from pgf_events.cli._resident import DECODED_EVENTS, run_captured
    from pgf_events.projections.folds import FOLDED_EVENTS, FoldCache
    from pgf_events.store import parse_url

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/long.db"
        data.long_patient(url, "L0001", args.events)
        app = TrialConduct(parse_url(url, cipher_key=""))
        app.mapper.remember(DECODED_EVENTS)  # as pgf shell sets its application up
        app.status_memo = {}
        days = iter(range(1700, 2500))  # dates in the past, after most of the history

        def command(*words: str) -> None:
            code, _, err = run_captured(["--db", url, *words], app)
            if code != 0:
                raise SystemExit(f"pgf {' '.join(words)} failed: {err}")

        command("report", "dosing", "--json")  # the read models built first (not timed)
        load_before = os.getloadavg()
        seconds: dict[str, list[float]] = {"kept folds": [], "no kept folds": []}
        for order in (("kept folds", "no kept folds"), ("no kept folds", "kept folds")):
            for mode in order:
                app.projection_folds = FoldCache(FOLDED_EVENTS) if mode == "kept folds" else None
                for i in range(args.rounds + 1):
                    day = (data.ENROLLED_ON + timedelta(days=next(days))).isoformat()
                    command("record", "lab", "L0001", "--date", day, "--anc", "0.8")
                    started = time.perf_counter()
                    command("report", "dosing", "--json")
                    if i:
                        seconds[mode].append(time.perf_counter() - started)
            app.projection_folds = None
        app.close()
    load_after = os.getloadavg()
    print(f"report dosing right after one new event of a {args.events:,}-event patient, inside pgf shell "
          f"(load {load_before[0]:.1f} -> {load_after[0]:.1f}):")
    for mode, values in seconds.items():
        print(f"  {mode}: median {1000 * statistics.median(values):.0f} ms "
              f"(range {1000 * min(values):.0f}-{1000 * max(values):.0f}, {len(values)} rounds)")


if __name__ == "__main__":
    main()
