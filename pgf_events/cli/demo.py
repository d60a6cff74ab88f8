"""``pgf demo``: a synthetic, clinically plausible cohort, recorded like a coordinator would."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.option("--patients", default=68, show_default=True, type=click.IntRange(1, 10000),
              help="Patients to enrol (screen failures come on top).")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed; the same seed gives the same cohort.")
@click.pass_obj
def demo(state: Any, patients: int, seed: int) -> None:
    """Record a realistic synthetic cohort through the coordinator's command path.

    \b
    Example:
      pgf demo
      pgf --db sqlite:///demo.db demo --patients 200 --seed 7
    """
    from pgf_events.demo import run_demo  # noqa: PLC0415

    run_demo(state, patients=patients, seed=seed)
