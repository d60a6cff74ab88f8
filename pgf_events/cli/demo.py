"""``pgf demo``: a synthetic, clinically plausible cohort, recorded like a coordinator would."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import click

from pgf_events.application import BatchRejected, Command
from pgf_events.audit.files import atomic_text_file
from pgf_events.cli._output import progress
from pgf_events.cli.batch import command_line
from pgf_events.cli.report import print_human
from pgf_events.demo import Subject, commands_for, plan_cohort
from pgf_events.demo_monitoring import apply_plans
from pgf_events.demo_monitoring import plan as monitoring_plan
from pgf_events.domain.errors import PgfError
from pgf_events.domain.kinds import DAY_ORDER


@click.command()
@click.option("--patients", default=68, show_default=True, type=click.IntRange(1, 10000),
              help="Patients to enrol (screen failures come on top).")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed; the same seed gives the same cohort.")
@click.option("--jsonl", "jsonl", metavar="FILE",
              help="Write the cohort as 'pgf import' lines to FILE (- for stdout) instead of recording it.")
@click.pass_obj
def demo(state: Any, patients: int, seed: int, jsonl: str | None) -> None:
    """Record a realistic synthetic cohort through the coordinator's command path.

    \b
    Example:
      pgf demo
      pgf --db sqlite:///demo.db demo --patients 200 --seed 7
      pgf demo --jsonl cohort.jsonl && pgf --db sqlite:///copy.db import cohort.jsonl
    """
    if jsonl is not None:
        count = write_jsonl(jsonl, patients=patients, seed=seed)
        click.echo(f"wrote {count} import lines to {jsonl}", err=True)
        return
    run_demo(state, patients=patients, seed=seed)


def run_demo(state: Any, *, patients: int, seed: int) -> None:
    """Record the cohort (one transaction; see :func:`_record`), then print a summary on stdout."""
    started = time.perf_counter()
    subjects = plan_cohort(patients, seed)
    app = state.app()
    others = [code for code in app.subjects() if not re.fullmatch(r"SF?\d+", code)]
    if others:  # synthetic patients never go into a store that holds anyone else (issue 13)
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise PgfError(
            f"the store {app.store.display} holds {len(others)} subject(s) that are not demo subjects ({shown}); "
            "the demo writes synthetic patients only into a new store, e.g. --db sqlite:///demo.db"
        )
    taken = [s.code for s in subjects if app.has_patient(s.code)]
    if taken and len(taken) == len(subjects) and len(app.subjects()) == len(subjects):
        # Re-running the README's first command: the same demo is already there; show it again.
        click.echo(f"{app.store.display} already holds a demo cohort ({len(subjects)} patients); nothing was "
                   "added (for another one use --db another.db). Its endpoint report:", err=True)
        _endpoint_report(app, state.overrides_protocol())
        return
    if taken:
        raise PgfError(
            f"the store {app.store.display} already holds demo subjects ({', '.join(sorted(taken)[:3])}"
            f"{', ...' if len(taken) > 3 else ''}); run the demo into a new store, e.g. --db sqlite:///another.db"
        )
    counts: Counter[str] = Counter()
    plans: list[Any] = []

    def batches() -> Iterator[list[Command]]:  # the cohort, patient by patient, every command numbered
        plans.clear()
        counts.clear()
        number = 0
        for s in plan_cohort(patients, seed):
            batch = commands_for(s)
            plans.append(monitoring_plan(s.code, batch, seed))
            counts.update(c.kind if c.action == "record" else c.action for c in batch)
            yield [attrs.evolve(c, line=number + n) for n, c in enumerate(batch, start=1)]
            number += len(batch)

    with progress(len(subjects), "Recording demo patients") as bar:
        _record(app, state.user, batches, bar.update)
    done = apply_plans(app, plans, state.user)
    from pgf_events.projections.review import review_events  # noqa: PLC0415

    monitoring = sum(len(review_events(app, s.code)) for s in subjects)  # queries, SDV, the freeze, edit checks
    _summary(app.store.display, seed, subjects, counts, time.perf_counter() - started, monitoring)
    click.echo(f"  monitoring: {done['queries']} queries ({done['open']} open, {done['answered']} answered, "
               f"{done['closed']} closed), {done['verified']} records source-verified, {done['frozen']} patient frozen")
    _endpoint_report(app, state.overrides_protocol())


def _endpoint_report(app: Any, state_overrides: bool = False) -> None:
    """End as docs/interface.md says: with the endpoint report, from the caught-up read models."""
    # The read models load only here, at the end of a recording run (not for --jsonl).
    from pgf_events.projections.queries import cohort_report  # noqa: PLC0415 - deliberately lazy
    from pgf_events.projections.store import ProjectionStore  # noqa: PLC0415 - deliberately lazy

    store = None if state_overrides else ProjectionStore(app)
    try:
        click.echo("")
        print_human("endpoints", cohort_report(app, "endpoints", store=store))
    finally:
        if store is not None:
            store.close()


def write_jsonl(path: str, *, patients: int, seed: int) -> int:
    """Write the same cohort as ``pgf import`` lines instead of recording it; returns the line count."""
    count = 0
    with atomic_text_file(path) as out:  # whole or not at all; '-' is stdout
        for s in plan_cohort(patients, seed):
            for command in commands_for(s):
                out.write(command_line(command) + "\n")
                count += 1
    return count


def _record(app: Any, user: str, batches: Callable[[], Iterator[list[Command]]],
            patient_done: Callable[[int], None]) -> None:
    """Record the cohort on the bulk path of ``pgf import`` (:mod:`pgf_events.bulk`): one transaction,
    every rule of the aggregate. Each patient is held whole (its registration needs it) only until its
    last command, so memory stays bounded however many patients are asked for; its commands come
    together, so where they end is known before the first is fed. An in-memory store records one
    atomic batch per patient."""
    from pgf_events.bulk import run  # noqa: PLC0415

    whole: dict[str, int] = {}  # patient -> number of its last command, set before its first is fed

    def commands() -> Iterator[Command]:
        for batch in batches():
            whole[_owner(batch[0])] = batch[-1].line or 0
            yield from batch
            patient_done(1)

    try:
        unit = run(app, commands(), user=user, whole=whole, total=0, defer_changes=True, keep_refs=False)
    except BatchRejected as e:  # a bug in the demo: say which synthetic event broke which rule
        line, error = e.errors[0]
        owner = next((code for code, end in whole.items() if line is not None and line <= end), "?")
        raise PgfError(f"the demo's own record for {owner} (command {line}) was rejected ({error})") from None
    if unit is None:  # an in-memory store takes no bulk write
        for batch in batches():
            _execute(app, user, batch)
            patient_done(1)


def _owner(command: Command) -> str:
    return command.subject or command.ref.partition("#")[0]


def _execute(app: Any, user: str, commands: list[Command]) -> None:
    try:
        app.execute(commands, user=user)
    except BatchRejected as e:
        raise PgfError(f"the demo's own record for {_owner(commands[0])} was rejected ({e.errors[0][1]})") from None


def _summary(store: str, seed: int, subjects: list[Subject], counts: Counter[str], seconds: float,
             monitoring: int = 0) -> None:
    total = sum(counts.values()) + monitoring
    groups = {"patients enrolled": [s.code for s in subjects if s.failure is None],
              "screen failures": [s.code for s in subjects if s.failure is not None]}
    lines = [f"Demo cohort recorded in {store} (seed {seed})"]
    lines += [f"  {label:<17}  {len(codes):>6}" + (f"  ({min(codes)}..{max(codes)})" if codes else "")
              for label, codes in groups.items()]
    rule = f"  {'-' * 12}  {'-' * 6}"
    lines += ["", f"  {'kind':<12}  {'events':>6}", rule]
    lines += [f"  {kind:<12}  {counts[kind]:>6}" for kind in sorted(counts, key=DAY_ORDER.__getitem__)]
    lines += [f"  {'monitoring':<12}  {monitoring:>6}"] if monitoring else []
    lines += [rule, f"  {'total':<12}  {total:>6}", "",
              f"  corrections {counts['correct']}, voids {counts['void']}",
              f"  wall time {seconds:.2f} s, {total / max(seconds, 1e-6):.0f} events/s"]
    click.echo("\n".join(lines))
