"""Human tables laid out by rich: fit the terminal (100 columns when not a terminal), wrap long text,
keep references and numbers on one line, page long output on a terminal.

Imported only when a human table is printed, so ``pgf record`` never pays for rich.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import click

from pgf_events.cli._human import human

DEFAULT_WIDTH = 100  # when stdout is not a terminal (a pipe, a file, a test)
WIDE = 10_000  # --wide: as wide as the content
SHORT = 16  # a column whose values all fit in this many characters never wraps
MAX_SIDE = 18  # a long text column other than the main one wraps at this width
MAIN_MIN = 16  # ... while the main one (the most to say) gets the rest, at least this much


# The width of the caller's output when a long-running process (``pgf daemon``) prints for another
# process: the width that process's own :func:`width` gave (pgf_events.client.output_width).
CALLER_WIDTH: ContextVar[int | None] = ContextVar("pgf_caller_width", default=None)


def width() -> int:
    """The terminal's width on a terminal; ``$COLUMNS`` or 100 otherwise."""
    caller = CALLER_WIDTH.get()
    if caller is not None:
        return caller
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


def layout(cells: list[list[str]], headers: list[str], available: int | None) -> list[int] | None:
    """Each column's width: short columns as wide as their longest value, other long columns wrap
    within MAX_SIDE (never inside a word), and the column with the most to say gets the rest.
    None when the columns cannot fit in ``available`` (then the caller leaves one out)."""
    n = len(headers)
    longest = [max([len(r[i]) for r in cells] + [len(headers[i])]) for i in range(n)]
    words = [max([len(w) for r in cells for w in r[i].split()] + [len(w) for w in headers[i].split()] + [1])
             for i in range(n)]
    if available is None:
        return longest
    main = max(range(n), key=lambda i: longest[i]) if n else -1
    widths = [longest[i] if longest[i] <= SHORT else max(words[i], min(longest[i], MAX_SIDE)) for i in range(n)]
    if n and longest[main] > SHORT:
        rest = available - 2 * (n - 1) - sum(w for i, w in enumerate(widths) if i != main)
        widths[main] = min(longest[main], rest)
        if widths[main] < max(words[main], min(longest[main], MAIN_MIN)):
            return None
    return widths if sum(widths) + 2 * (n - 1) <= available else None


def build_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: dict[str, str], *,
                wide: bool, title: str | None = None, available: int | None = None) -> Any:
    """A rich table of the rows; None if ``columns`` cannot fit in ``available`` characters."""
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    names = [headers.get(c, c.replace("_", " ")) for c in columns]
    cells = [[human(c, row.get(c)) for c in columns] for row in rows]
    widths = layout(cells, names, None if wide else available)
    if widths is None:
        return None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", title=title,
                  title_justify="left", collapse_padding=True, padding=(0, 1))
    for i, name in enumerate(names):
        texts = [r[i] for r in cells]
        numeric = any(texts) and all(_numeric(t) for t in texts if t)
        table.add_column(name, width=widths[i], no_wrap=wide, overflow="fold",
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
                title: str | None = None, wide: bool = False) -> None:
    out = console(wide=wide)
    shown = list(columns)
    table = build_table(rows, shown, headers, wide=wide, title=title, available=out.width)
    main = _main_column(rows, columns, headers)
    while table is None and len(shown) > 1:
        # leave columns out from the right (never the one with the most to say) rather than crush them
        shown.pop(-2 if shown[-1] == main else -1)
        table = build_table(rows, shown, headers, wide=wide, title=title, available=out.width)
    if table is None:  # one column wider than the terminal: let it wrap
        table = build_table(rows, shown, headers, wide=True, title=title)
    lines = [line.rstrip() for line in _render_lines(out, table)]
    text = "\n".join(lines)
    if len(shown) < len(columns):
        hidden = [headers.get(c, c.replace("_", " ")) for c in columns if c not in shown]
        click.echo(f"({len(hidden)} column(s) not shown: {', '.join(hidden)}; use --wide or --columns)", err=True)
    if sys.stdout.isatty() and len(lines) > shutil.get_terminal_size().lines - 2:
        click.echo_via_pager(text + "\n")
    else:
        click.echo(text)


def _main_column(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: dict[str, str]) -> str | None:
    lengths = {c: max([len(human(c, row.get(c))) for row in rows] + [len(headers.get(c, c))]) for c in columns}
    return max(columns, key=lengths.__getitem__) if columns else None


def _render_lines(out: Any, table: Any) -> list[str]:
    with out.capture() as captured:
        out.print(table)
    return captured.get().rstrip("\n").split("\n")
