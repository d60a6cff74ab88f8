"""The ``pgf`` command: root group, global options, and the one place errors become exit codes.

Exit codes: 0 ok; 1 a rejected command or failed check (``Error: <one line>`` on stderr, nothing
written); 2 a usage error. Unexpected exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import click

from pgf_events import __version__
from pgf_events.cli._parsing import KeptParserGroup
from pgf_events.cli._state import State
from pgf_events.domain.errors import PgfError
from pgf_events.gc_tuning import BULK_THRESHOLD

# Options of the root group that may also be written after the subcommand (`pgf status S001 --db x.db`).
GLOBAL_OPTIONS = ("--db", "--user", "--protocol", "--wait")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move every global option (and its value) to the front, so click sees it on the root group.

    Stops at ``--`` (what follows is data). ``--db=x.db`` and ``--db x.db`` both work.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            rest.extend(args[i:])
            break
        name = token.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and "=" in token:
            front.append(token)
        elif token in GLOBAL_OPTIONS and i + 1 < len(args):
            front.extend(args[i:i + 2])
            i += 1
        else:
            rest.append(token)
        i += 1
    return front + rest


class PgfGroup(KeptParserGroup):
    """A group whose errors are always one line on stderr, and whose global options go anywhere."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None and not ctx.resilient_parsing:
            args = hoist_global_options(list(args))
        return super().parse_args(ctx, args)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            _fail(f"{e.format_message()}{hint}", 2)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", 1)
        except PgfError as e:
            _fail(str(e), 1)
        except BrokenPipeError:
            # The reader went away (e.g. `pgf history S001 | head`): stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except Exception as e:  # noqa: BLE001 - only the store's own refusals become one line; bugs re-raise
            message = _store_refusal(e)
            if message is None:
                raise
            _fail(message, 1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _store_refusal(error: BaseException) -> str | None:
    """A lock held past --wait, or a write to a read-only store, wherever it surfaced (the log, the
    read models): one line naming the lock or the reason, never a traceback."""
    from pgf_events.store import is_locked, locked_message, parse_url  # noqa: PLC0415 - only on the error path

    state = _STATE[-1] if _STATE else None
    try:
        config = parse_url(state.db_url if state else None)
    except PgfError:
        return None
    if is_locked(error):
        return locked_message(config)
    if "readonly database" in str(error) or "read-only file system" in str(error).lower():
        why = config.read_only or "the database refused to write"
        return f"the store {config.display} is read-only ({why}); nothing was written"
    return None


_STATE: list[State] = []  # the running command's state, for the error path


def _fail(message: str, code: int) -> None:
    from pgf_events.domain.parsing import printable  # noqa: PLC0415 - only on the error path

    # One line, and printable whatever the input held (e.g. invalid UTF-8 in an argument arrives
    # as lone surrogates, which a terminal cannot even encode).
    message = printable(" ".join(str(message).split()))
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group(cls=PgfGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgf")
@click.option("--db", envvar="PGF_DB", metavar="PATH|URL",
              help="Store: a file path, sqlite:///FILE (default pgf-trial.db) or postgresql://user@host:port/db. "
                   "Global options may come before or after the command.")
@click.option("--user", envvar="PGF_USER", metavar="NAME",
              help="Restates who you are; refused unless it is your OS account (SQLite) or database login "
                   "(PostgreSQL), which is who pgf records as acting.")
@click.option("--protocol", "protocol_file", envvar="PGF_PROTOCOL", metavar="FILE|v1|v2",
              type=click.Path(dir_okay=False),
              help="TOML file overriding protocol parameters, or a named version (v2, the default; v1).")
@click.option("--wait", envvar="PGF_WAIT", metavar="SECONDS",
              help="How long to wait for a store another process has locked before saying so (default 5).")
@click.pass_context
def cli(ctx: click.Context, db: str | None, user: str | None, protocol_file: str | None, wait: str | None) -> None:
    """pgf: record and audit the NCT06171906 trial (MSC for poor graft function).

    \b
    Example:
      pgf record register S001 --site PKU --birth-date 1980-02-03 --sex F \\
          --weight-kg 61 --transplant-date 2025-01-10
      pgf record lab S001 --date 2025-03-01 --anc 0.4 --plt 18 --hb 72
      pgf history S001
    """
    if wait is not None:  # --wait: every store this command opens waits this long for another's lock
        from pgf_events.store import WAIT_ENV, wait_seconds  # noqa: PLC0415

        os.environ[WAIT_ENV] = str(wait_seconds(wait))
    state = State(db_url=db, requested_user=user, protocol_file=protocol_file)
    _STATE[:] = [state]
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    # One short process per command: collect reference cycles far less often than every 700
    # allocations (gc_tuning explains why; replays and imports are a third faster).
    gc.set_threshold(BULK_THRESHOLD, *gc.get_threshold()[1:])
    cli.main(prog_name="pgf")


# Every command, as "module:attribute" under pgf_events.cli, imported only when it runs (or when
# --help lists it): `pgf record lab` must not pay for SQLAlchemy, the projections or the exports.
COMMANDS: dict[str, str] = {
    "record": "record:record", "correct": "edit:correct", "void": "edit:void", "import": "batch:import_",
    "history": "history:history", "status": "status:status", "patients": "patients:patients", "report": "report:report",
    "projections": "projections:projections", "sign": "sign:sign", "audit": "audit:audit",
    "export": "export:export", "db": "audit:db", "users": "users:users", "backup": "admin:backup",
    "keygen": "admin:keygen", "demo": "demo:demo", "keys": "keys:keys",
    "follow": "follow:follow", "serve": "serve:serve",  # the downstream feed (issue 5)
    "daemon": "daemon:daemon", "shell": "shell:shell",  # the long-running coordinator (issue 18)
    # Monitoring (issue 15)
    "query": "monitor:query", "queries": "monitor:queries", "sdv": "monitor:sdv", "freeze": "monitor:freeze",
    "unfreeze": "monitor:unfreeze", "lock": "monitor:lock", "unlock": "monitor:unlock", "due": "due:due",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """``Group.commands`` that imports a command's module on first access (click only reads it as a mapping)."""

    def __init__(self, spec: dict[str, str]):
        self._spec = dict(spec)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, _, attribute = self._spec[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(f"pgf_events.cli.{module}"), attribute)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._spec.setdefault(name, "")
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._spec[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._spec)

    def __len__(self) -> int:
        return len(self._spec)


cli.commands = LazyCommands(COMMANDS)  # type: ignore[assignment]
