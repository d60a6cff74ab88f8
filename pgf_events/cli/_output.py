"""One way to print: JSON documents, CSV, or aligned human tables; data on stdout only."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from pgf_events.domain.parsing import printable
from pgf_events.formatting import json_default, to_json

TABULAR = ("csv", "tsv", "jsonl")  # machine forms of a table, besides --json


def output_options(*, csv_ok: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--json``; for tables (``csv_ok``) also ``--csv``, ``--tsv``, ``--jsonl``, ``--columns`` and ``--wide``.

    ``--columns`` and ``--wide`` are kept in the command's context (``ctx.meta``), so commands
    need not pass them on: :func:`render` reads them.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if csv_ok:
            f = click.option("--wide", is_flag=True, expose_value=False, callback=_remember("pgf.wide"),
                             help="Show every column, unwrapped (however wide).")(f)
            f = click.option("--columns", metavar="A,B,...", expose_value=False, callback=_remember("pgf.columns"),
                             help="Only these columns, in this order (names as in --csv or the table header).")(f)
            f = click.option("--jsonl", "fmt", flag_value="jsonl", help="Print one JSON object per line.")(f)
            f = click.option("--tsv", "fmt", flag_value="tsv", help="Print tab-separated values.")(f)
            f = click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")(f)
        return click.option(*JSON_OPTION[0], **JSON_OPTION[1])(f)

    return decorate


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value:
            ctx.meta[key] = value
        return value

    return callback


def table_choice(key: str) -> Any:
    """The running command's ``--columns`` (a list) or ``--wide`` (a bool), if given."""
    ctx = click.get_current_context(silent=True)
    value = ctx.meta.get(key) if ctx is not None else None
    if key == "pgf.columns" and value:
        return [c.strip() for c in str(value).split(",") if c.strip()]
    return value


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


def render(rows: Sequence[dict[str, Any]], fmt: str | None, columns: Sequence[str] | None = None, *,
           headers: dict[str, str] | None = None, title: str | None = None, choosable: bool = True) -> None:
    """Print rows as a table that fits the terminal, CSV, TSV, JSON Lines or a JSON array.

    ``columns`` are the row keys shown by default (a human table may show fewer than the machine
    forms carry); ``headers`` maps a key to its human header. ``--columns`` picks columns by key or
    header; ``--wide`` shows every key of the rows. A secondary table (a report's listing) is not
    ``choosable``: ``--columns`` is for the main table.
    """
    wanted = table_choice("pgf.columns") if choosable else None
    every = list(dict.fromkeys(k for row in rows for k in row)) or list(columns or [])
    columns = list(columns or every)
    headers = headers or {}
    if wanted:
        columns = [_column(name, every or columns, headers) for name in wanted]
    elif fmt is None and table_choice("pgf.wide"):
        columns = list(dict.fromkeys([*columns, *every]))
    if fmt == "json":
        emit_json([{c: row.get(c) for c in columns} for row in rows] if wanted else list(rows))
        return
    if fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps({c: row.get(c) for c in columns} if wanted else row, default=json_default,
                                  ensure_ascii=False))
        return
    if fmt in ("csv", "tsv"):
        write_delimited(rows, columns, "," if fmt == "csv" else "\t")
        return
    from pgf_events.cli._table import print_table  # noqa: PLC0415 - rich loads only for human tables

    print_table(rows, columns, headers, title=title, wide=bool(table_choice("pgf.wide")))


def _column(name: str, available: Sequence[str], headers: dict[str, str]) -> str:
    by_header = {h.lower(): k for k, h in headers.items()}
    key = name if name in available else by_header.get(name.lower(), name.replace(" ", "_"))
    if key not in available:
        raise click.UsageError(f"--columns: no column {name!r}; choose from {', '.join(available)}")
    return key


def write_delimited(rows: Sequence[dict[str, Any]], columns: Sequence[str], delimiter: str) -> None:
    """CSV or TSV on stdout: a header line of keys, then one line per row."""
    from defusedcsv import csv  # noqa: PLC0415 - a cell that looks like a formula (= + - @ | %) gets a leading '

    writer = csv.writer(sys.stdout, lineterminator="\n", delimiter=delimiter)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])


def progress(total: int, label: str) -> Any:
    """A progress bar on stderr when stderr is a terminal (rich.progress); a no-op otherwise."""
    if sys.stderr.isatty() and total > 0:
        return _Bar(total, label)
    return _NoProgress()


@contextmanager
def working(label: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while a long step runs, when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    with Progress(SpinnerColumn(), TextColumn(label), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        bar.add_task(label, total=None)
        yield


class _Bar:
    def __init__(self, total: int, label: str):
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415

        self._progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task(label, total=total)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, n: int) -> None:
        self._progress.advance(self._task, n)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None
