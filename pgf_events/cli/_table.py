"""Human tables laid out by rich: fit the terminal (100 columns when not a terminal), wrap long text,
keep references and numbers on one line, page long output on a terminal.

Imported only when a human table is printed, so ``pgf record`` never pays for rich.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click

from pgf_events.cli._human import human

DEFAULT_WIDTH = 100  # when stdout is not a terminal (a pipe, a file, a test)
WIDE = 10_000  # --wide: as wide as the content


def width() -> int:
    """The terminal's width on a terminal; ``$COLUMNS`` or 100 otherwise."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    try:
        return max(40, int(os.environ.get("COLUMNS", DEFAULT_WIDTH)))
    except ValueError:
        return DEFAULT_WIDTH


def console(*, wide: bool = False) -> Any:
    from rich.console import Console  # noqa: PLC0415

    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=WIDE if wide else width(), highlight=False, emoji=False,
                   markup=False, force_terminal=tty, no_color=not tty, soft_wrap=False)


def build_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: dict[str, str], *,
                wide: bool, title: str | None = None) -> Any:
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", title=title,
                  title_justify="left", collapse_padding=True, padding=(0, 1))
    cells = [[human(c, row.get(c)) for c in columns] for row in rows]
    for i, c in enumerate(columns):
        texts = [r[i] for r in cells]
        header = headers.get(c, c.replace("_", " "))
        longest = max([len(t) for t in texts] + [0])
        short = wide or longest <= 13
        minimum = max(len(header), longest) if short else max([len(w) for w in header.split()] + [min(longest, 8)])
        numeric = any(texts) and all(_numeric(t) for t in texts if t)
        table.add_column(header, no_wrap=short, overflow="fold", min_width=minimum,
                         justify="right" if numeric else "left")
    for r in cells:
        table.add_row(*r)
    return table


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: dict[str, str], *,
                title: str | None = None) -> None:
    from pgf_events.cli._output import table_choice  # noqa: PLC0415

    wide = bool(table_choice("pgf.wide"))
    out = console(wide=wide)
    shown = list(columns)
    table = build_table(rows, shown, headers, wide=wide, title=title)
    while not wide and len(shown) > 1 and _minimum(out, table) > out.width:
        shown.pop()  # elide columns from the right rather than crush them; say so below
        table = build_table(rows, shown, headers, wide=wide, title=title)
    lines = [line.rstrip() for line in _render_lines(out, table)]
    text = "\n".join(lines)
    if len(shown) < len(columns):
        hidden = [headers.get(c, c.replace("_", " ")) for c in columns[len(shown):]]
        click.echo(f"({len(hidden)} column(s) not shown: {', '.join(hidden)}; use --wide or --columns)", err=True)
    if sys.stdout.isatty() and len(lines) > shutil.get_terminal_size().lines - 2:
        click.echo_via_pager(text + "\n")
    else:
        click.echo(text)


def _minimum(out: Any, table: Any) -> int:
    """The narrowest the table can be without cropping a header or a short value (2 spaces between columns)."""
    return sum(c.min_width or 1 for c in table.columns) + 2 * (len(table.columns) - 1)


def _render_lines(out: Any, table: Any) -> list[str]:
    with out.capture() as captured:
        out.print(table)
    return captured.get().rstrip("\n").split("\n")
