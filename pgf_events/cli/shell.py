"""``pgf shell``: a prompt for entering a visit sheet, one ``pgf`` command a line, without the ``pgf``.

Each line runs through the same commands, parsing, echo and ``Error:`` lines as a ``pgf`` process,
on a store opened once (so a record takes about a millisecond instead of a process start). Line
editing and history come from readline, the history is kept in ``~/.pgf_history``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from pgf_events.cli._resident import prepare, run

NOT_INSIDE = frozenset({"shell", "daemon", "serve", "follow", "demo"})
SET_AT_START = ("--db", "--protocol")
PROMPT = "pgf> "
# A line with no quote, no backslash and no whitespace but spaces, tabs and line ends: shlex.split
# gives exactly str.split's words (a visit sheet's lines; shlex costs a record's 2%).
_PLAIN = re.compile(r"[^'\"\\\s]*(?:[ \t\r\n]+[^'\"\\\s]*)*")


def split(line: str) -> list[str] | str:
    """The command's arguments, or the one-line error to print for the line."""
    if line.lstrip().startswith("#"):  # a comment line (a '#' inside a line is a reference: S001#6)
        return []
    if _PLAIN.fullmatch(line):
        args = line.split()
    else:
        try:
            args = shlex.split(line)
        except ValueError as e:
            return f"cannot read the line: {e}"
    if args and args[0] == "pgf":
        args = args[1:]
    if args and args[0] in NOT_INSIDE:
        return f"'{args[0]}' does not run inside pgf shell"
    for a in args:
        if a.partition("=")[0] in SET_AT_START:
            return f"{a.partition('=')[0]} is set when the shell starts (pgf {a.partition('=')[0]} ... shell)"
    return args


class _History:
    """readline's line editing and a history file, on a terminal only."""

    def __init__(self, path: Path | None):
        self.path = path
        self.readline: Any = None
        try:
            import readline  # noqa: PLC0415 - only an interactive shell edits lines

            self.readline = readline
        except ImportError:  # a Python without readline: plain input()
            return
        if path is not None and path.exists():
            with contextlib.suppress(OSError):
                readline.read_history_file(str(path))
        readline.set_history_length(10_000)
        words = ["record", "correct", "void", "history", "status", "patients", "report", "query", "queries", "exit"]
        readline.set_completer(lambda text, n: ([w for w in words if w.startswith(text)] + [None])[n])
        readline.parse_and_bind("tab: complete")

    def save(self) -> None:
        if self.readline is not None and self.path is not None:
            try:
                self.readline.write_history_file(str(self.path))
            except OSError:
                click.echo(f"note: could not save the history to {self.path}", err=True)


@click.command()
@click.option("--history", "history_file", type=click.Path(dir_okay=False), metavar="FILE",
              default=lambda: os.environ.get("PGF_HISTORY") or str(Path.home() / ".pgf_history"),
              show_default="$PGF_HISTORY or ~/.pgf_history", help="Where the prompt keeps its history.")
@click.pass_obj
def shell(state: Any, history_file: str) -> None:
    """Enter a visit sheet at a prompt: pgf commands without 'pgf', one a line; 'exit' or Ctrl-D ends.

    Every line prints what 'pgf ...' would (the echo, or one Error: line) and the
    prompt continues; a failed line writes nothing. Up-arrow and Ctrl-R recall lines,
    Tab completes commands. Read from a file or pipe, it runs each line in turn and
    exits 1 if any failed.

    \b
    Example:
      pgf shell
      pgf> record lab S001 --date 2025-03-01 --anc 0.4 --plt 18
      pgf> correct S001#6 --set anc=0.45 --reason "transcription error"
    """
    app = state.app()
    prepare(app)
    if hasattr(app.recorder, "empty_streams"):  # SQLite: the streams found empty, until the file changes
        app.recorder.empty_streams = set()
    interactive = sys.stdin.isatty()
    history = _History(Path(history_file).expanduser() if history_file else None) if interactive else None
    failed = False
    if interactive:
        click.echo(f"pgf shell on {app.store.display} as {state.user}; 'help' lists commands, 'exit' or Ctrl-D ends",
                   err=True)
    try:
        while True:
            try:
                line = input(PROMPT if interactive else "")
            except EOFError:
                if interactive:
                    click.echo(err=True)
                break
            except KeyboardInterrupt:
                click.echo(err=True)
                continue
            if line.strip() in ("exit", "quit"):
                break
            args = split(line)
            if isinstance(args, str):
                click.echo(f"Error: {args}", err=True)
                failed = True
                continue
            if not args:
                continue
            if args == ["help"]:
                args = ["--help"]
            code = run(args, app)
            sys.stdout.flush()
            failed = failed or code != 0
    finally:
        if history is not None:
            history.save()
    if failed and not interactive:
        sys.exit(1)
