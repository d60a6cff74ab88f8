"""Running ``pgf`` commands inside a long-running process (``pgf daemon``, ``pgf shell``).

The command goes through the very same click group, parsing, errors and exit codes as a ``pgf``
process; only the store stays open between commands (:func:`pgf_events.cli._state.shared_app`).
"""

from __future__ import annotations

import io
import traceback
from contextlib import redirect_stderr, redirect_stdout
from typing import TYPE_CHECKING

from pgf_events.cli._state import shared_app

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

DECODED_EVENTS = 50_000  # decoded events a long-running process keeps (FastMapper.remember)


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
