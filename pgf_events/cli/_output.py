"""One way to print: JSON documents, CSV, or aligned human tables; data on stdout only."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click
from defusedcsv import csv  # a cell that looks like a formula (= + - @ | %) gets a leading '

from pgf_events.domain.parsing import printable
from pgf_events.formatting import to_json


def output_options(*, csv_ok: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--json`` (and ``--csv`` for tables) as one shared decorator."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if csv_ok:
            f = click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")(f)
        return click.option(*JSON_OPTION[0], **JSON_OPTION[1])(f)

    return decorate


# Shared with commands built without decorators (pgf record <kind>). fmt None means a human table.
JSON_OPTION: tuple[tuple[str, ...], dict[str, Any]] = (("--json", "fmt"), {"flag_value": "json", "help": "Print one JSON document."})


def emit_json(obj: Any) -> None:
    click.echo(to_json(obj))


def cell(value: Any) -> str:
    """A value as table text; text that could fake a line or reorder one (stored before entry refused it) is escaped."""
    if isinstance(value, str):
        return printable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def render(rows: Sequence[dict[str, Any]], fmt: str | None, columns: Sequence[str] | None = None) -> None:
    """Print rows as an aligned table, CSV, or a JSON array."""
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt == "json":
        emit_json(list(rows))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
        return
    table = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def progress(total: int, label: str) -> Any:
    """A progress bar on stderr when stderr is a terminal; a no-op context otherwise."""
    if sys.stderr.isatty() and total > 0:
        return click.progressbar(length=total, label=label, file=sys.stderr)
    return _NoProgress()


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None
