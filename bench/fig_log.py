"""A registry's big log: projection rebuild and ``pgf audit verify``, per core and with every core,
and how the rebuild scales (time, peak RSS) from a tenth of the log to all of it.

Per core: the engine runs pinned to one core (``sched_setaffinity``; it sees one usable core and
starts no worker) against its baseline pinned to the same core. With every core: the engine as a
user runs it (a second process on a big log) against the same one-process baseline, unpinned.
"""

from __future__ import annotations

import json
from pathlib import Path

from baselines import baseline_select_chain, baseline_select_loads
from figures import Context, Figure, group, indicative_if_quick, plain_figure, ratio_figure
from harness import Run, interleave, pgf, pinned


def _rebuild(ctx: Context, url: str, db: Path, events: int) -> tuple[list[Figure], list[Run]]:
    """The rebuild figures (per core; every core) and the per-core runs."""
    core, empty = ctx.core, ctx.empty_store()
    count = 0

    def baseline(cpus: set[int] | None) -> float:
        nonlocal count
        with pinned(cpus):
            seconds, count = baseline_select_loads(db)
        return seconds

    rounds = interleave(ctx.rounds, {
        "engine": lambda: pgf(url, "projections", "rebuild", "--json", cpus=core),
        "baseline": lambda: baseline(core),
        "engine_all": lambda: pgf(url, "projections", "rebuild", "--json", sample_rss=True),
        "baseline_all": lambda: baseline(None),
        "fixed": lambda: pgf(empty, "projections", "rebuild", "--json", cpus=core),
    })
    rss = max(r.max_rss_mb for r in rounds.runs["engine_all"])
    name = f"projection rebuild, all projections, {events:,} events"
    return [
        ratio_figure(ctx, f"{name}, per core", rounds, unit="events/s", target=0.25, higher=True, work=events,
                     base_work=count, fixed="fixed", per_core=True,
                     note="engine and baseline (select + json.loads) on one core"),
        ratio_figure(ctx, f"{name}, every core", rounds, unit="events/s", target=0.25, higher=True, work=events,
                     base_work=count, engine="engine_all", baseline="baseline_all", fixed="fixed", per_core=False,
                     judged=False, note=f"the engine's worker process on the other core; peak RSS {rss:.0f} MB"),
    ], rounds.runs["engine"] + [Run(0, rss, "")]


def _verify(ctx: Context, url: str, db: Path, events: int) -> list[Figure]:
    core, empty = ctx.core, ctx.empty_store()
    count = 0

    def engine(cpus: set[int] | None) -> Run:
        result = pgf(url, "audit", "verify", "--json", cpus=cpus)
        doc = json.loads(result.stdout)
        if not doc["ok"] or doc["events"] != events:
            raise RuntimeError(f"verify did not pass over every event: {doc}")
        return result

    def baseline(cpus: set[int] | None) -> float:
        nonlocal count
        with pinned(cpus):
            seconds, count = baseline_select_chain(db)
        return seconds

    rounds = interleave(ctx.rounds, {
        "engine": lambda: engine(core), "baseline": lambda: baseline(core),
        "engine_all": lambda: engine(None), "baseline_all": lambda: baseline(None),
        "fixed": lambda: pgf(empty, "audit", "verify", "--json", cpus=core),
    })
    name = f"pgf audit verify, {events:,} events"
    return [
        ratio_figure(ctx, f"{name}, per core", rounds, unit="events/s", target=0.5, higher=True, work=events,
                     base_work=count, fixed="fixed", per_core=True,
                     note="engine and baseline (select + chained SHA-256 of the payloads) on one core"),
        ratio_figure(ctx, f"{name}, every core", rounds, unit="events/s", target=0.5, higher=True, work=events,
                     base_work=count, engine="engine_all", baseline="baseline_all", fixed="fixed", per_core=False,
                     judged=False, note="the log split between two processes"),
    ]


@group("log", order=40, help="projection rebuild and pgf audit verify of a big log (per core, every core); scale")
def log_figures(ctx: Context) -> list[Figure]:
    events, small = ctx.size(1_000_000, 20_000), ctx.size(100_000, 2_000)
    ctx.say(f"log: rebuild {small:,} events (the scale figure's small end)")
    url, db = ctx.cohort_log(small)
    small_figures, small_runs = _rebuild(ctx, url, db, small)
    ctx.say(f"log: rebuild and verify {events:,} events")
    url, db = ctx.cohort_log(events)
    figures, runs = _rebuild(ctx, url, db, events)
    ctx.say("log: verify")
    figures += _verify(ctx, url, db, events)
    small_s = sorted(r.seconds for r in small_runs[:-1])[len(small_runs[:-1]) // 2]
    large_s = sorted(r.seconds for r in runs[:-1])[len(runs[:-1]) // 2]
    ratio, ideal = large_s / small_s, events / small
    scale = plain_figure(f"scale: rebuild time per core, {events:,} / {small:,} events", ratio, "×",
                         f"≤ {ideal * 1.1:g}", ratio <= ideal * 1.1,
                         note=f"medians {small_s:.2f} s vs {large_s:.2f} s", rounds=ctx.rounds,
                         fixed_share=small_figures[0].fixed_share)
    indicative_if_quick(ctx, scale)
    rss = runs[-1].max_rss_mb
    figures += [scale, plain_figure(f"scale: rebuild peak RSS, {events:,} events", rss, "MB", "≤ 300 MB", rss <= 300,
                                    note=f"{small_runs[-1].max_rss_mb:.0f} MB at {small:,} events; every core, "
                                         "the process and its worker")]
    return figures
