"""``pgf import`` of a lab migration (SQLite), and the store it leaves for ``pgf record``."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import data
from baselines import baseline_sqlite_insert, json_rows, stored_sizes
from figures import Context, Figure, group, indicative_if_quick, plain_figure, ratio_figure
from harness import Run, interleave, pgf


def _sizes(ctx: Context) -> tuple[int, int]:
    """(lab events, patients)"""
    return ctx.size((100_000, 500), (5_000, 50))


def import_base(ctx: Context) -> tuple[Path, Path, int]:
    """The enrolled patients' store before the import, the lab lines and how many events it holds
    (generated once per run, never timed). Each import runs on a copy of this store."""

    def make() -> tuple[Path, Path, int]:
        events, patients = _sizes(ctx)
        db, lines = ctx.tmp / "import-base.db", ctx.tmp / "labs.jsonl"
        data.import_store(f"sqlite:///{db}", lines, patients=patients, events=events)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one file: copies are complete
            before = conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
        return db, lines, before

    return ctx.once("import_base", make)  # type: ignore[no-any-return]


def _copy(base: Path, to: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{to}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(base, to)
    return f"sqlite:///{to}"


def imported_store(ctx: Context) -> tuple[str, Path]:
    """A store with the lab migration imported (the ``record`` figure's store): (url, file)."""

    def make() -> tuple[str, Path]:
        base, lines, _ = import_base(ctx)
        db = ctx.tmp / "imported.db"
        url = _copy(base, db)
        pgf(url, "import", str(lines))
        return url, db

    return ctx.once("imported_store", make)  # type: ignore[no-any-return]


@group("import", order=10, help="pgf import of a lab migration into a SQLite store")
def import_figures(ctx: Context) -> list[Figure]:
    events, patients = _sizes(ctx)
    ctx.say(f"import: {events:,} lab events for {patients} patients")
    base, lines, before = import_base(ctx)
    one_line = ctx.tmp / "one-lab.jsonl"
    one_line.write_text(lines.read_text().splitlines()[0] + "\n")
    db = ctx.tmp / "import.db"

    def engine() -> Run:
        return pgf(_copy(base, db), "import", str(lines))  # the copy is made before the process starts

    def fixed() -> Run:  # the same command with one line: start-up, opening the store, the batch's own costs
        return pgf(_copy(base, ctx.tmp / "import-fixed.db"), "import", str(one_line))

    _, imported = imported_store(ctx)  # one import first (untimed): the import's own event sizes, warm caches
    sizes = stored_sizes(imported, before)
    rows = json_rows(sizes)

    def baseline() -> float:
        return baseline_sqlite_insert(ctx.tmp / "baseline_insert.db", rows)

    rounds = interleave(ctx.rounds, {"engine": engine, "baseline": baseline, "fixed": fixed})
    return [ratio_figure(ctx, f"pgf import, {events:,} lab events / {patients} patients (SQLite)", rounds,
                         unit="events/s", target=0.15, higher=True, work=events, base_work=len(sizes), fixed="fixed",
                         note="baseline: executemany of equally sized JSON rows, one transaction")]


@group("import-memory", order=11, help="peak RSS of pgf import of a million lab lines (SQLite)")
def import_memory_figures(ctx: Context) -> list[Figure]:
    """One round (a million lines take a while): the import streams, so its peak must not grow with the file."""
    events, patients = ctx.size((1_000_000, 500), (20_000, 50))
    ctx.say(f"import-memory: {events:,} lab lines for {patients} patients (generated, not timed)")
    db, lines = ctx.tmp / "import-1m-base.db", ctx.tmp / "labs-1m.jsonl"
    data.import_store(f"sqlite:///{db}", lines, patients=patients, events=events)
    run = pgf(_copy(db, ctx.tmp / "import-1m.db"), "import", str(lines), sample_rss=True)
    lines.unlink()
    figure = plain_figure(f"pgf import peak RSS, {events:,} lab lines (SQLite)", run.max_rss_mb, "MB", "≤ 500 MB",
                          run.max_rss_mb <= 500,
                          note=f"{run.seconds:.1f} s, {events / run.seconds:,.0f} events/s; one round")
    indicative_if_quick(ctx, figure)
    return [figure]
