"""``pgf projections status|rebuild``: the read models' positions, and rebuilding them from the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from pgf_events.cli._output import emit_json, output_options, render, working
from pgf_events.domain.errors import PgfError
from pgf_events.projections.slices import PROJECTIONS

if TYPE_CHECKING:
    from pgf_events.projections.model_store import ModelKeeper
    from pgf_events.projections.store import ProjectionStore
    from pgf_events.projections.stream_models import StreamModel
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


# The stream models (projections/stream_models.py), by name: the module that registers each when
# imported (a model of a layer above the projections, e.g. audit, is named here too).
MODEL_MODULES: dict[str, str] = {"audit": "pgf_events.audit.finding_rows",
                                 "trail": "pgf_events.audit.trail_index",
                                 "worklist": "pgf_events.projections.worklist_rows"}


def stream_models(names: Sequence[str] = tuple(MODEL_MODULES), store: ProjectionStore | None = None) -> list[StreamModel]:
    """The stream models named (default: every one), their modules imported; with ``store``, also the
    models of the cut-offs declared there (:mod:`pgf_events.projections.cutoff_rows`)."""
    import importlib  # noqa: PLC0415

    from pgf_events.projections.stream_models import registered  # noqa: PLC0415

    for name in names:
        importlib.import_module(MODEL_MODULES[name])
    found = [m for m in registered() if m.name in names]
    if store is not None:
        from pgf_events.projections.cutoff_rows import declared_models  # noqa: PLC0415

        found += declared_models(store)
    return found


def stream_model_keepers(store: ProjectionStore) -> list[ModelKeeper]:
    """A keeper for every stream model the store can keep (a read-only copy keeps none)."""
    from pgf_events.projections.model_store import ModelKeeper  # noqa: PLC0415

    store.setup()  # the projections' tables first: a store another process holds locked says so once, not per model
    keepers = [ModelKeeper(store, model) for model in stream_models(store=store)]
    return [k for k in keepers if k.available()]


@click.group()
def projections() -> None:
    """Inspect or rebuild the projections (read models) derived from the event log.

    \b
    Example:
      pgf projections status
      pgf projections rebuild
      pgf projections rebuild endpoints
      pgf projections verify
      pgf projections cutoff 2025-06-30
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

    Without NAME, the per-stream read models (the web worklist's and audit page's) are rebuilt
    too, in the same pass over the log.
    """
    with working(f"Rebuilding {name or 'every read model'} from the event log"):
        store = open_store(state)
        keepers = stream_model_keepers(store) if name is None else []
        result = store.rebuild(name, [k.model for k in keepers])
        for keeper in keepers:  # what was appended meanwhile (normally nothing)
            keeper.catch_up()
            result[f"{keeper.model.name}_rows"] = store.model_rows_written.get(keeper.model.name, 0)
    if fmt == "json":
        emit_json(result)
        return
    rate = result["events_per_second"]
    click.echo(
        f"rebuilt {', '.join(result['projections'])} from {result['events']} events in "
        f"{result['seconds']:.2f} s" + (f" ({rate:,.0f} events/s)" if rate else "")
    )


@projections.command()
@click.argument("name", required=False, type=click.Choice((*PROJECTIONS, *MODEL_MODULES)))
@output_options()
@click.pass_obj
def verify(state: Any, name: str | None, fmt: str | None) -> None:
    """Replay the event log in memory and compare it with the read-model tables (all, or NAME):
    the projections and the per-stream models (the web worklist's, 'worklist'; the audit page's, 'audit').

    Exit 0 when every row matches; exit 1 naming the first read model and subject that differ.
    Nothing is repaired ('pgf projections rebuild' does that); the result is recorded, and
    reports and 'pgf serve' say when the read models were last verified.

    \b
    Example:
      pgf projections verify
      pgf projections verify survival --json
      pgf projections verify worklist
    """
    result = check_read_models(state, name, fmt)
    if not result.ok:
        raise ReadModelsDiffer(result.difference.message if result.difference else "read models differ")


@projections.command()
@click.argument("day", metavar="[DATE]", required=False)
@click.option("--drop", is_flag=True, help="Stop keeping rows at DATE (its rows go; nothing else changes).")
@output_options()
@click.pass_obj
def cutoff(state: Any, day: str | None, drop: bool, fmt: str | None) -> None:
    """Keep read models at the data cut-off DATE (or list the cut-offs kept).

    A declared cut-off (an interim analysis, a DSMB meeting) is answered from rows kept like every
    read model: 'pgf report NAME --cutoff DATE' and the web pages at ?cutoff=DATE read them instead
    of deriving every patient. Declaring derives every patient once at DATE; the rows then follow
    the log, are rebuilt by 'pgf projections rebuild' and checked by 'pgf projections verify'.
    Any other cut-off is still derived from the log.

    \b
    Example:
      pgf projections cutoff 2025-06-30
      pgf projections cutoff
      pgf projections cutoff 2025-06-30 --drop
    """
    from pgf_events.domain.errors import ValidationError  # noqa: PLC0415
    from pgf_events.domain.parsing import parse_date  # noqa: PLC0415
    from pgf_events.projections import cutoff_rows  # noqa: PLC0415
    from pgf_events.projections.model_store import ModelKeeper  # noqa: PLC0415

    try:
        when = parse_date(day, "cutoff") if day is not None else None
    except ValidationError as e:  # the date is an argument here, not the --cutoff option
        raise ValidationError(str(e).replace("--cutoff", "the cut-off DATE", 1)) from None
    if drop and when is None:
        raise click.UsageError("--drop needs the DATE of a declared cut-off")
    store = open_store(state)
    if when is not None and drop:
        if not cutoff_rows.forget(store, when):
            raise PgfError(f"no rows are kept at the cut-off {when}: 'pgf projections cutoff' lists those kept")
        if fmt == "json":
            emit_json({"cutoff": when.isoformat(), "dropped": True})
        else:
            click.echo(f"stopped keeping rows at the cut-off {when}")
        return
    if when is not None:
        keeper = ModelKeeper(store, cutoff_rows.model(when))
        if state.app().store.read_only or not keeper.available():
            raise PgfError("rows at a cut-off cannot be kept here (a read-only store, or a login that may not "
                           "create read-model tables)")
        with working(f"Deriving every patient at the cut-off {when}"):
            keeper.catch_up()
        from pgf_events.projections.provision import grant_read_models  # noqa: PLC0415

        grant_read_models(store.app)  # PostgreSQL: every role reads the new table as it does the others
    rows = []
    head = store.app.recorder.max_notification_id() or 0
    for kept in cutoff_rows.declared(store):
        keeper = ModelKeeper(store, cutoff_rows.model(kept))
        position, digest = keeper.tracking()
        rows.append({"cutoff": kept.isoformat(), "position": position, "head": head, "behind": max(head - position, 0),
                     "current": digest == keeper.digest and position >= head})
    if fmt == "json":
        emit_json({"cutoffs": rows})
        return
    if not rows:
        click.echo("no cut-off is kept: 'pgf projections cutoff DATE' keeps one")
        return
    render(rows, fmt, ["cutoff", "position", "head", "behind", "current"])


class ReadModelsDiffer(PgfError):
    """A read-model row is not what a replay of the event log gives."""


def check_read_models(state: Any, name: str | None, fmt: str | None) -> ReadModelCheck:
    """Run the comparison and print its summary (JSON, or one line); the caller decides the exit code."""
    from pgf_events.projections.verify import verify_read_models  # noqa: PLC0415

    store = open_store(state)
    names = PROJECTIONS if name is None else [name] if name in PROJECTIONS else []
    models = stream_models(store=store) if name is None else stream_models([name]) if name in MODEL_MODULES else []
    with working("Replaying the event log to verify the read models"):
        result = verify_read_models(store, names, models=models, checked_by=state.acting_user())
    if fmt == "json":
        emit_json(result.as_json())
    elif result.ok:
        kept = f" and {len(result.models)} stream model(s)" if result.models else ""
        click.echo(f"read models intact: {len(result.projections)} projection(s){kept}, {result.rows} row(s) "
                   f"match a replay of the event log up to position {result.position}")
    return result
