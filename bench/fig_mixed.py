"""``pgf import`` of a whole cohort's file (every kind of line, corrections and voids: what ``pgf demo
--jsonl`` writes), at two sizes: its peak memory must not grow with the file."""

from __future__ import annotations

from figures import Context, Figure, group, indicative_if_quick, plain_figure
from harness import Run, pgf


def _import(ctx: Context, patients: int) -> tuple[Run, int]:
    """Write the cohort's lines (not timed), then import them into a new store: (run, lines)."""
    lines = ctx.tmp / f"cohort-{patients}.jsonl"
    pgf(ctx.empty_store(), "demo", "--patients", str(patients), "--jsonl", str(lines))
    count = sum(1 for _ in lines.open("rb"))
    store = f"sqlite:///{ctx.tmp / f'cohort-{patients}.db'}"
    run = pgf(store, "import", str(lines), sample_rss=True)
    lines.unlink()
    return run, count


@group("import-mixed", order=12, help="peak RSS of pgf import of a whole cohort's file, at two sizes (SQLite)")
def mixed_import_figures(ctx: Context) -> list[Figure]:
    """One round each (generation dominates): a file of every kind of line holds each patient whole
    only until its last line, so the peak at three times the file stays where it was."""
    small, large = ctx.size((1_500, 4_500), (60, 180))
    ctx.say(f"import-mixed: the demo model's lines for {small:,} and {large:,} patients (generated, not timed)")
    (run_s, lines_s), (run_l, lines_l) = _import(ctx, small), _import(ctx, large)
    growth = run_l.max_rss_mb / run_s.max_rss_mb
    figures = [
        plain_figure(f"pgf import peak RSS, whole-cohort file of {lines_l:,} lines (SQLite)", run_l.max_rss_mb, "MB",
                     "≤ 500 MB", run_l.max_rss_mb <= 500,
                     note=f"{run_l.seconds:.1f} s, {lines_l / run_l.seconds:,.0f} lines/s; one round"),
        plain_figure(f"scale: import peak RSS, {lines_l:,} / {lines_s:,} whole-cohort lines", growth, "×",
                     "≤ 1.5", growth <= 1.5,
                     note=f"{run_l.max_rss_mb:.0f} MB / {run_s.max_rss_mb:.0f} MB (memory bounded, not proportional: "
                          f"{lines_l / lines_s:.1f}× the lines)"),
    ]
    for figure in figures:
        indicative_if_quick(ctx, figure)
    return figures
