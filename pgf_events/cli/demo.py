"""``pgf demo``: a synthetic, clinically plausible cohort, recorded like a coordinator would."""

from __future__ import annotations

from typing import Any

import click


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
    from pgf_events import demo as demo_module  # noqa: PLC0415

    if jsonl is not None:
        count = demo_module.write_jsonl(jsonl, patients=patients, seed=seed)
        click.echo(f"wrote {count} import lines to {jsonl}", err=True)
        return
    _refuse_real_subjects(state)
    demo_module.run_demo(state, patients=patients, seed=seed)


def _refuse_real_subjects(state: Any) -> None:
    """Synthetic patients never go into a store that holds anyone else (issue 13): only a new store,
    or one holding nothing but demo-coded subjects (which the demo then refuses by name)."""
    import re  # noqa: PLC0415

    from pgf_events.domain.errors import PgfError  # noqa: PLC0415

    app = state.app()
    others = [s for s in app.subjects() if not re.fullmatch(r"SF?\d+", s)]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise PgfError(
            f"the store {app.store.display} holds {len(others)} subject(s) that are not demo subjects ({shown}); "
            "the demo writes synthetic patients only into a new store, e.g. --db sqlite:///demo.db"
        )
