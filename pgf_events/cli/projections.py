"""``pgf projections status|rebuild``: the read models' positions, and rebuilding them from the log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgf_events.cli._output import emit_json, output_options, render, working
from pgf_events.domain.errors import PgfError
from pgf_events.projections.slices import PROJECTIONS

if TYPE_CHECKING:
    from pgf_events.projections.store import ProjectionStore
    from pgf_events.projections.verify import ReadModelCheck


def open_store(state: Any) -> ProjectionStore:
    """The projections of the store named by --db; closed with the command."""
    from pgf_events.projections.store import ProjectionStore  # noqa: PLC0415

    if state.overrides_protocol():
        raise PgfError(f"the shared read models are kept under the trial protocol; --protocol {state.protocol_file} "
                       "applies to reports and status (evaluated in memory), not to the read models")
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
      pgf projections verify
    """


@projections.command("status")
@click.argument("name", required=False, type=click.Choice(PROJECTIONS))
@output_options(csv_ok=True)
@click.pass_obj
def status_(state: Any, name: str | None, fmt: str | None) -> None:
    """Show each projection's (or NAME's) position against the head of the event log.

    \b
    Example:
      pgf projections status
      pgf projections status survival --json
    """
    rows = [r for r in open_store(state).status() if name is None or r["name"] == name]
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

    Without NAME, the web worklist's read model is rebuilt too.
    """
    with working(f"Rebuilding {name or 'every read model'} from the event log"):
        store = open_store(state)
        result = store.rebuild(name)
        if name is None:  # and the worklist's read model (pgf due's inputs per patient; not a report)
            from pgf_events.projections.worklist_model import model_of  # noqa: PLC0415

            model = model_of(store)
            result["worklist_rows"] = model.rebuild() if model.available() else None
    if fmt == "json":
        emit_json(result)
        return
    rate = result["events_per_second"]
    click.echo(
        f"rebuilt {', '.join(result['projections'])} from {result['events']} events in "
        f"{result['seconds']:.2f} s" + (f" ({rate:,.0f} events/s)" if rate else "")
    )


@projections.command()
@click.argument("name", required=False, type=click.Choice(PROJECTIONS))
@output_options()
@click.pass_obj
def verify(state: Any, name: str | None, fmt: str | None) -> None:
    """Replay the event log in memory and compare it with the read-model tables (all, or NAME).

    Exit 0 when every row matches; exit 1 naming the first projection and subject that differ.
    Nothing is repaired ('pgf projections rebuild' does that); the result is recorded, and
    reports and 'pgf serve' say when the read models were last verified.

    \b
    Example:
      pgf projections verify
      pgf projections verify survival --json
    """
    result = check_read_models(state, name, fmt)
    if not result.ok:
        raise ReadModelsDiffer(result.difference.message if result.difference else "read models differ")


class ReadModelsDiffer(PgfError):
    """A read-model row is not what a replay of the event log gives."""


def check_read_models(state: Any, name: str | None, fmt: str | None) -> ReadModelCheck:
    """Run the comparison and print its summary (JSON, or one line); the caller decides the exit code."""
    from pgf_events.projections.verify import verify_read_models  # noqa: PLC0415

    store = open_store(state)
    with working("Replaying the event log to verify the read models"):
        result = verify_read_models(store, [name] if name else PROJECTIONS, checked_by=state.acting_user())
    if fmt == "json":
        emit_json(result.as_json())
    elif result.ok:
        click.echo(f"read models intact: {len(result.projections)} projection(s), {result.rows} row(s) "
                   f"match a replay of the event log up to position {result.position}")
    return result
