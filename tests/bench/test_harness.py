"""bench/harness.py and bench/figures.py: interleaved rounds and the --quick judging rule (no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from figures import Context, ratio_figure  # noqa: E402
from harness import Rounds, interleave  # noqa: E402


def test_rounds_alternate_the_order_so_a_load_drift_hits_every_step() -> None:
    order: list[str] = []
    steps = {name: (lambda name=name: order.append(name) or 1.0) for name in ("engine", "baseline", "fixed")}
    rounds = interleave(3, steps)  # type: ignore[arg-type]
    assert order == ["engine", "baseline", "fixed", "baseline", "fixed", "engine", "fixed", "engine", "baseline"]
    assert rounds.samples == {"engine": [1.0] * 3, "baseline": [1.0] * 3, "fixed": [1.0] * 3}


def _ctx(quick: bool) -> Context:
    return Context(Path("."), quick, 3, "", lambda _: None)


def _rounds(engine: list[float], fixed: list[float]) -> Rounds:
    return Rounds({"engine": engine, "baseline": [1.0, 1.0, 9.0], "fixed": fixed}, 1.0, 2.0)


def test_the_figure_is_the_median_and_records_the_load() -> None:
    f = ratio_figure(_ctx(False), "x", _rounds([2.0, 100.0, 4.0], [0.1] * 3), unit="events/s", target=0.25,
                     higher=True, work=1000, fixed="fixed")
    assert (f.value, f.baseline, f.ratio, f.met) == (250.0, 1000.0, 0.25, True)
    assert (f.load_before, f.load_after, f.rounds, f.fixed_share) == (1.0, 2.0, 3, 0.1 / 4.0)


def test_quick_judges_only_figures_whose_fixed_costs_are_under_a_tenth() -> None:
    cheap = ratio_figure(_ctx(True), "x", _rounds([4.0] * 3, [0.39] * 3), unit="s", target=5, higher=False,
                         fixed="fixed")
    assert cheap.met is True and not cheap.indicative
    costly = ratio_figure(_ctx(True), "x", _rounds([4.0] * 3, [0.4] * 3), unit="s", target=5, higher=False,
                          fixed="fixed")
    assert costly.met is None and costly.indicative and "indicative" in costly.target
    full = ratio_figure(_ctx(False), "x", _rounds([4.0] * 3, [0.4] * 3), unit="s", target=3, higher=False,
                        fixed="fixed")
    assert full.met is False and not full.indicative  # a full run judges every figure
