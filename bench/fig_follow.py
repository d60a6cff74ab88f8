"""The change feed's commit-to-follower lag, measured by bench/follow_lag.py (its own benchmark)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from fig_postgres import postgres_answers
from figures import Context, Figure, group, plain_figure
from harness import HERE, load

TARGET = "p99 ≤ 200 ms"


def _lag_figure(name: str, lag: Any, lags: list[float], base: list[float], before: float) -> Figure:
    p99, b99 = lag.pct(lags, 0.99) * 1000, lag.pct(base, 0.99) * 1000
    figure = plain_figure(name, p99, "ms", TARGET, p99 <= 200,
                          note=f"{len(lags)} events at 20/s; p50 {lag.pct(lags, 0.5) * 1000:.0f} ms",
                          load_before=before)
    figure.baseline, figure.ratio = b99, (p99 / b99 if b99 else None)
    return figure


@group("follow", order=90, help="commit-to-follower lag of pgf follow (bench/follow_lag.py)")
def follow_figures(ctx: Context) -> list[Figure]:
    ctx.say("follow: commit-to-follower lag (bench/follow_lag.py)")
    events, rate = ctx.size(300, 20), 20.0
    try:
        spec = importlib.util.spec_from_file_location("follow_lag", HERE / "follow_lag.py")
        assert spec is not None and spec.loader is not None
        lag = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lag)
        figures = []
        if not postgres_answers(ctx.postgres):
            before = load()[0]
            url, schema = lag._postgres(ctx.postgres)
            try:
                lags = lag.measure_follow(url, events, rate)
                base = lag.baseline_listen_notify(ctx.postgres, events, rate)
            finally:
                lag._drop(ctx.postgres, schema)
            figures.append(_lag_figure("follow lag p99, PostgreSQL (LISTEN/NOTIFY)", lag, lags, base, before))
        before = load()[0]
        with tempfile.TemporaryDirectory() as tmp:
            lags = lag.measure_follow(f"sqlite:///{tmp}/follow.db", events, rate)
            base = lag.baseline_polling(Path(tmp) / "poll.db", events, rate, lag.INTERVAL)
        figures.append(_lag_figure(f"follow lag p99, SQLite (poll {lag.INTERVAL:g} s)", lag, lags, base, before))
        return figures
    except Exception as exc:  # noqa: BLE001 - the feed's benchmark is not ours: report, don't crash the run
        return [plain_figure("follow lag p99", None, "ms", TARGET, None,
                             note=f"bench/follow_lag.py failed: {type(exc).__name__}: {str(exc)[:120]}")]
