"""What a figure is, the groups that measure them, and the table they print in.

A *group* is a function registered with :func:`group`; it gets the run's :class:`Context` and returns
its :class:`Figure` s. bench/run.py imports every ``bench/fig_*.py`` module, so a new figure is a new
module (or a new function in one) and nothing else: see bench/README.md, "Adding a figure".
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from harness import Rounds, load, one_core

INDICATIVE_SHARE = 0.10  # --quick judges a figure only if its fixed costs are under this share of its time


@attrs.define
class Figure:
    figure: str
    value: float | None
    unit: str
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None  # None: not judged (a report, skipped, or indicative)
    note: str = ""
    load_before: float | None = None  # the 1-minute load average when the figure started
    load_after: float | None = None
    rounds: int | None = None  # interleaved rounds; value and baseline are their medians
    fixed_share: float | None = None  # the engine's fixed costs (its command on a minimal input) / its time
    indicative: bool = False  # --quick with fixed costs ≥ 10%: shown, never pass/fail
    per_core: bool | None = None  # True: engine and baseline each on one core; False: the engine used every core

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class Context:
    """What every group gets: the run's folder and settings, and data shared between groups."""

    tmp: Path
    quick: bool
    rounds: int
    postgres: str
    say: Callable[[str], None]
    cache: dict[str, Any] = attrs.field(factory=dict)

    def size(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    @property
    def core(self) -> set[int] | None:
        """The one core per-core figures pin their engine and baseline to."""
        return one_core()

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for in this run (shared data, never timed)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def cohort_log(self, events: int) -> tuple[str, Path]:
        """A SQLite store holding a registry's log of ``events`` demo-model events (bench/data.py),
        generated once per run and shared by every group that asks (rebuild, verify, ...): (url, file)."""
        import data

        def make() -> tuple[str, Path]:
            db = self.tmp / f"log{events}.db"
            url = f"sqlite:///{db}"
            self.say(f"  generating a {events:,}-event log (not timed)")
            started = time.perf_counter()
            data.cohort_log(url, events)
            self.say(f"  generated in {time.perf_counter() - started:.0f} s")
            return url, db

        return self.once(f"cohort_log:{events}", make)  # type: ignore[no-any-return]

    def empty_store(self) -> str:
        """A SQLite store with no events (its read models built): a command there is its fixed cost."""
        import data
        from harness import pgf

        def make() -> str:
            url = f"sqlite:///{self.tmp / 'empty.db'}"
            data.open_store(url).close()  # creates the tables (not timed)
            pgf(url, "projections", "rebuild")
            return url

        return self.once("empty_store", make)  # type: ignore[no-any-return]


@attrs.frozen
class Group:
    name: str
    order: int
    help: str
    measure: Callable[[Context], list[Figure]]


GROUPS: dict[str, Group] = {}


def group(name: str, *, order: int, help: str) -> Callable[[Callable[[Context], list[Figure]]],
                                                           Callable[[Context], list[Figure]]]:
    """Register a group of figures; ``--only NAME`` runs it alone; groups run by ``order``."""

    def register(measure: Callable[[Context], list[Figure]]) -> Callable[[Context], list[Figure]]:
        if name in GROUPS:
            raise ValueError(f"two figure groups are called {name!r}")
        GROUPS[name] = Group(name, order, help, measure)
        return measure

    return register


# ---------------------------------------------------------------------------------------- building figures

def ratio_figure(ctx: Context, name: str, rounds: Rounds, *, unit: str, target: float, higher: bool,
                 work: float | None = None, base_work: float | None = None, engine: str = "engine",
                 baseline: str = "baseline", fixed: str | None = None, per_core: bool | None = None,
                 note: str = "", judged: bool = True) -> Figure:
    """A figure from interleaved rounds: the engine's median against the baseline's.

    With ``work`` (events, ...), value and baseline are throughputs (work / median seconds; the
    baseline's work is ``base_work`` if it differs), else the median seconds. ``fixed`` names the
    rounds' sample of the engine's fixed costs (its command on a minimal input); in --quick a figure
    whose fixed costs are ≥ 10% of its time is indicative. ``judged=False``: a report, no target.
    """
    seconds, base_seconds = rounds.median(engine), rounds.median(baseline)
    if work is not None:
        value, base = work / seconds, (base_work if base_work is not None else work) / base_seconds
        ratio = value / base
    else:
        value, base = seconds, base_seconds
        ratio = value / base
    met = (ratio >= target if higher else ratio <= target) if judged else None
    text = f"{'≥' if higher else '≤'} {target:g}×" if judged else "report"
    share = rounds.median(fixed) / seconds if fixed else None
    spread = f"{min(rounds.samples[engine]):.3g}-{max(rounds.samples[engine]):.3g} s"
    figure = Figure(name, value, unit, base, ratio, text, met,
                    f"{note}; engine {spread} over {len(rounds.samples[engine])} rounds".lstrip("; "),
                    rounds.load_before, rounds.load_after, len(rounds.samples[engine]), share, per_core=per_core)
    return indicative_if_quick(ctx, figure)


def indicative_if_quick(ctx: Context, figure: Figure) -> Figure:
    """In --quick, a figure dominated by fixed costs is shown but not judged (it would mislead)."""
    if ctx.quick and figure.fixed_share is not None and figure.fixed_share >= INDICATIVE_SHARE and figure.met is not None:
        figure.met, figure.indicative = None, True
        figure.target = f"{figure.target} (indicative)"
    return figure


def plain_figure(name: str, value: float | None, unit: str, target: str, met: bool | None, note: str = "",
                 **extra: Any) -> Figure:
    """A figure without a baseline (a scale ratio, a peak RSS, ...); the load is read now."""
    now = load()[0]
    return Figure(name, value, unit, None, None, target, met, note, extra.pop("load_before", now),
                  extra.pop("load_after", now), **extra)


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------------------------------- output

def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _load(f: Figure) -> str:
    if f.load_before is None:
        return "-"
    return f"{f.load_before:.1f}→{f.load_after:.1f}" if f.load_after is not None else f"{f.load_before:.1f}"


def table(figures: list[Figure]) -> str:
    head = ["figure", "value", "unit", "baseline", "ratio", "target", "met", "load"]
    rows = [[f.figure, _fmt(f.value), f.unit, _fmt(f.baseline), f"{f.ratio:.3g}×" if f.ratio is not None else "-",
             f.target, "indicative" if f.indicative else {True: "yes", False: "NO", None: "-"}[f.met], _load(f)]
            for f in figures]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in [head, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = []
    for f in figures:
        extra = f"fixed costs {f.fixed_share:.0%} of its time" if f.fixed_share is not None else ""
        text = "; ".join(t for t in (f.note, extra) if t)
        if text:
            notes.append(f"- {f.figure}: {text}")
    return "\n".join(lines + [""] + notes)
