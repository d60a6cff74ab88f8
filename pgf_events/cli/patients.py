"""``pgf patients``: every patient on one line (site, status, MSC D1, doses, next window, endpoints)."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import output_options, render
from pgf_events.cli.projections import open_store
from pgf_events.projections.patients import SOURCES, STATUSES, patient_list
from pgf_events.projections.sections import SECTIONS

HEADERS = {"msc_d1": "MSC D1", "next_dose": "next", "window": "window", "anc_engraftment": "ANC",
           "rbc_recovery": "RBC", "platelet_response": "PLT", "death_date": "died", "relapse_date": "relapsed"}
COLUMNS = ("subject", "site", "status", "msc_d1", "doses", "next_dose", "window", "anc_engraftment",
           "rbc_recovery", "platelet_response", "death_date")


def _split(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    for v in out:
        if v not in STATUSES:
            raise click.BadParameter(f"{v!r} is not one of {', '.join(STATUSES)}")
    return out


@click.command()
@click.option("--site", "sites", multiple=True, metavar="SITE", help="Only this site (repeat for several).")
@click.option("--status", "statuses", multiple=True, callback=_split, metavar="|".join(STATUSES),
              shell_complete=lambda _c, _p, incomplete: [s for s in STATUSES if s.startswith(incomplete)],
              help=f"Only patients in this status (repeat or comma-separate): {', '.join(STATUSES)}.")
@output_options(csv_ok=True)
@click.pass_obj
def patients(state: Any, sites: tuple[str, ...], statuses: list[str], fmt: str | None) -> None:
    """List patients: site, status, MSC D1, doses given, the next dose window and the endpoints so far.

    \b
    Example:
      pgf patients
      pgf patients --site PKU --status on-treatment
      pgf patients --status died,withdrawn --csv
    """
    app = state.app(must_exist=True)
    if state.in_memory():  # evaluated in memory: the shared read models stay as they are (or cannot be written)
        from pgf_events.projections.queries import cohort_report  # noqa: PLC0415

        by_name = {name: cohort_report(app, name)["rows"] for name in SOURCES}
    else:
        store = open_store(state)
        store.catch_up(SOURCES)
        by_name = {name: [SECTIONS[name].row(s) for s in store.rows(name)] for name in SOURCES}
    rows = patient_list(by_name, app.protocol.dose_window_days, sites=sites, statuses=statuses)
    rows = [r for r in rows if app.in_scope(r["site"])]  # a site-scoped grant sees its sites only
    if fmt is None and not rows:
        click.echo("no patients match", err=True)
        return
    render(rows, fmt, list(COLUMNS), headers=HEADERS)
