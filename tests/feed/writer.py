"""A writer process for the feed tests: the demo cohort's commands, one transaction each, interleaved.

``python tests/feed/writer.py URL [--patients N] [--seed S] [--delay SECONDS]`` records every
patient's commands in clinical order, taking one command from each patient in turn, so the log
interleaves subjects the way concurrent coordinators would; prints the number of events at the end.
"""

from __future__ import annotations

import argparse
import time

from pgf_events.application import TrialConduct
from pgf_events.demo import commands_for, plan_cohort
from pgf_events.store import parse_url


def interleaved(patients: int, seed: int) -> list:
    queues = [commands_for(s) for s in plan_cohort(patients, seed)]
    out = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    app = TrialConduct(parse_url(args.url))
    count = 0
    try:
        for command in interleaved(args.patients, args.seed):
            app.execute([command], user=app.acting_user())
            count += 1
            if args.delay:
                time.sleep(args.delay)
    finally:
        app.close()
    print(count, flush=True)


if __name__ == "__main__":
    main()
