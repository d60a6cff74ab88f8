"""``pgf projections status|rebuild``: the read models' positions, and rebuilding them from the log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgf_events.cli._output import emit_json, output_options, render
from pgf_events.projections.slices import PROJECTIONS

if TYPE_CHECKING:
    from pgf_events.projections.store import ProjectionStore


def open_store(state: Any) -> ProjectionStore:
    """The projections of the store named by --db; closed with the command."""
    from pgf_events.projections.store import ProjectionStore  # noqa: PLC0415

    store = ProjectionStore(state.app(must_exist=True), notify=lambda message: click.echo(message, err=True))
    click.get_current_context().call_on_close(store.close)
    return store


@click.group()
def projections() -> None:
    """Inspect or rebuild the projections (read models) derived from the event log.

    \b
    Example:
      pgf projections status
      pgf projections rebuild
      pgf projections rebuild endpoints
    """


@projections.command("status")
@output_options(csv_ok=True)
@click.pass_obj
def status_(state: Any, fmt: str | None) -> None:
    """Show each projection's position against the head of the event log.

    \b
    Example:
      pgf projections status --json
    """
    rows = open_store(state).status()
    if fmt == "json":
        emit_json({"projections": rows})
        return
    render(rows, fmt, ["name", "position", "head", "behind", "rows", "protocol_version", "current"])


@projections.command()
@click.argument("name", required=False, type=click.Choice(PROJECTIONS))
@output_options()
@click.pass_obj
def rebuild(state: Any, name: str | None, fmt: str | None) -> None:
    """Rebuild one projection (or all) from zero by replaying the whole event log.

    \b
    Example:
      pgf projections rebuild
      pgf projections rebuild survival --json
    """
    result = open_store(state).rebuild(name)
    if fmt == "json":
        emit_json(result)
        return
    rate = result["events_per_second"]
    click.echo(
        f"rebuilt {', '.join(result['projections'])} from {result['events']} events in "
        f"{result['seconds']:.2f} s" + (f" ({rate:,.0f} events/s)" if rate else "")
    )
