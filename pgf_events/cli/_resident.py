"""Running ``pgf`` commands inside a long-running process (``pgf daemon``, ``pgf shell``).

The command goes through the very same click group, parsing, errors and exit codes as a ``pgf``
process; only the store stays open between commands (:func:`pgf_events.cli._state.shared_app`).
"""

from __future__ import annotations

import io
import traceback
from contextlib import redirect_stderr, redirect_stdout
from typing import TYPE_CHECKING, Any

from pgf_events.cli._state import shared_app

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

DECODED_EVENTS = 50_000  # decoded events a long-running process keeps (FastMapper.remember)

# What the commands of a visit sheet load on first use (the commands' modules, the unit of work, the
# aggregates a write checks, the echo's and the status's derivation): a long-running process imports
# them as it starts, so the user's first line is answered as fast as the next
# (tests/cli/test_resident_warm.py).
WARM_COMMANDS = ("record", "correct", "void", "status", "history")
WARM_MODULES = ("pgf_events.commands", "pgf_events.topics", "pgf_events.domain.kinds", "pgf_events.domain.review",
                "pgf_events.domain.lock", "pgf_events.domain.users", "pgf_events.domain.imports",
                "pgf_events.domain.rules.editchecks", "pgf_events.projections.changes", "pgf_events.cli._echo",
                "pgf_events.projections.queries", "pgf_events.projections.cohort", "pgf_events.projections.review",
                "pgf_events.cli._table")


def prepare(app: TrialConduct) -> None:
    """Make ``app`` a long-running process's (``pgf shell``, ``pgf daemon``): what it keeps between
    commands, and what the first command would import, loaded now."""
    import importlib  # noqa: PLC0415

    from pgf_events.cli import cli  # noqa: PLC0415 - the root group imports this module's callers
    from pgf_events.projections.folds import FOLDED_EVENTS, FoldCache  # noqa: PLC0415

    mapper: Any = app.mapper  # a FastMapper
    mapper.remember(DECODED_EVENTS)  # kept between commands: a stored event never changes
    app.status_memo = {}  # the status after each echoed record is the next one's "before"
    app.patient_cache = {}  # the patients written, brought up to date before each write (version check)
    app.edit_facts = {}  # their edit checks' facts: a new record is added to them
    app.projection_folds = FoldCache(FOLDED_EVENTS)  # a new event is folded onto the patient's kept fold
    for module in WARM_MODULES:
        importlib.import_module(module)
    for name in WARM_COMMANDS:
        cli.commands[name]  # noqa: B018 - imports the command's module (LazyCommands)
    register = getattr(mapper.transcoder, "_register_waiting", None)
    if register is not None:  # the records' transcodings, registered on first use otherwise
        register()


def run(args: list[str], app: TrialConduct) -> int:
    """Run ``pgf ARGS`` on ``app``'s store in this process; its exit code (output goes to sys.stdout/err)."""
    from pgf_events.cli import cli  # noqa: PLC0415 - the root group imports this module's callers

    with shared_app(app):
        try:
            cli.main(args=args, prog_name="pgf")
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def run_captured(args: list[str], app: TrialConduct, width: int | None = None) -> tuple[int, str, str]:
    """:func:`run` with its output captured: (exit code, stdout, stderr). A bug keeps its traceback.

    ``width``: the caller's output width (what its own ``_table.width()`` gives), for wrapped lines and tables.
    """
    from pgf_events.cli._table import CALLER_WIDTH  # noqa: PLC0415

    out, err = io.StringIO(), io.StringIO()
    token = CALLER_WIDTH.set(width)
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = run(args, app)
        except Exception:  # noqa: BLE001 - a bug: report it to the caller as the plain path would
            traceback.print_exc()
            code = 1
        finally:
            CALLER_WIDTH.reset(token)
    return code, out.getvalue(), err.getvalue()
