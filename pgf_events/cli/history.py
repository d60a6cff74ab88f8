"""``pgf history SUBJECT``: every event in order, with who, when, why and what it superseded."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options, render
from pgf_events.domain.parsing import parse_as_of
from pgf_events.projections.history import describe, history_rows


def as_of_option(f: Any) -> Any:
    return click.option(
        "--as-of", metavar="TIME",
        help="Only what was recorded up to TIME: a date-time (UTC unless an offset is given) or a date (its end).",
    )(f)


def _reason(row: dict[str, Any]) -> str | None:
    """The reason column: a change's reason, and a deviation's acknowledgement after it."""
    parts = [row["reason"], f"deviation: {row['deviation']}" if row.get("deviation") else None]
    return "; ".join(p for p in parts if p) or None


def cutoff_option(f: Any) -> Any:
    return click.option(
        "--cutoff", metavar="DATE",
        help="Data cut-off: evaluate every patient as of this clinical date (facts dated later are ignored); "
             "independent of --as-of.",
    )(f)


@click.command()
@click.argument("subject")
@as_of_option
@output_options(csv_ok=True)
@click.pass_obj
def history(state: Any, subject: str, as_of: str | None, fmt: str | None) -> None:
    """Show a patient's full history: every event, correction and void.

    \b
    Example:
      pgf history S001
      pgf history S001 --as-of 2025-03-15T12:00Z --json
    """
    cutoff = parse_as_of(as_of) if as_of else None
    app = state.app(must_exist=True)
    rows = history_rows(app.stream(subject), as_of=cutoff)
    from pgf_events.projections.review import review_events, review_rows  # noqa: PLC0415

    monitoring = review_rows(review_events(app, subject), as_of=cutoff)
    if fmt == "json":
        emit_json({"subject": subject.strip().upper(), "as_of": cutoff, "events": rows, "monitoring": monitoring})
        return
    table = [
        {
            # a narrow terminal leaves columns out from the right: the least needed come last
            "ref": r["ref"], "type": r["type"], "clinical date": r["clinical_date"],
            "by": r["recorded_by"], "what": describe(r), "reason": _reason(r),
            "recorded (UTC)": r["recorded_at"], "status": r["status"], "source": r["source"],
        }
        for r in rows
    ] + [
        {"ref": m["ref"], "type": m["type"], "recorded (UTC)": m["recorded_at"], "by": m["recorded_by"],
         "what": m["what"], "reason": m["reason"]}
        for m in monitoring
    ]
    table.sort(key=lambda r: r["recorded (UTC)"])
    if not rows:
        click.echo(f"patient {subject.strip().upper()} had no recorded events as of {cutoff}", err=True)
        return
    if fmt == "csv":
        render([{**r, "data": r["data"]} for r in rows], "csv",
               ["ref", "type", "kind", "clinical_date", "recorded_at", "recorded_by", "source", "reason",
                "supersedes", "status", "data", "deviation"])
        return
    render(table, None)
