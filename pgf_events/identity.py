"""Who is acting: taken from an authenticator, never from the environment or an option.

- Embedded SQLite (and the in-memory store): the operating-system account of the running process,
  read from its real uid (``pwd.getpwuid(os.getuid())``). ``$USER``, ``$LOGNAME`` and ``$PGF_USER``
  play no part: the kernel, not the shell, says who started the process.
- PostgreSQL: the database's authenticated login, ``session_user`` (see
  :meth:`pgf_events.application.TrialConduct.session_user`); the server checked the password.

``--user`` / ``PGF_USER`` may only restate the authenticated identity (:func:`check_restated`).

The one seam, for test harnesses that run the CLI in-process as several people:
:func:`authenticator_replaced` swaps the local authenticator for a function inside the current
process. It is Python, not configuration: nothing a user can set from a shell reaches it, and
whoever can run Python in the engine's process can already write the SQLite file directly.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pgf_events.domain.errors import AccessDenied, ValidationError


def os_account() -> str:
    """The account name of this process's real uid (not ``$USER``, which anyone can set)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        raise ValidationError(f"the process's uid {uid} has no account name; pgf needs a named account") from None


_authenticator: Callable[[], str] = os_account


def local_account() -> str:
    """Who is acting on an embedded (SQLite or in-memory) store."""
    return _authenticator()


@contextmanager
def authenticator_replaced(authenticator: Callable[[], str]) -> Iterator[None]:
    """Test seam: act as ``authenticator()`` instead of the OS account, inside this process only."""
    global _authenticator  # noqa: PLW0603 - the seam is exactly this one module-level function
    previous, _authenticator = _authenticator, authenticator
    try:
        yield
    finally:
        _authenticator = previous


def check_restated(requested: str | None, actual: str, how: str) -> None:
    """``--user``/``PGF_USER`` may name only who is really acting; anything else is refused."""
    if requested is not None and requested.strip() and requested.strip() != actual:
        raise AccessDenied(
            f"--user (or PGF_USER) {requested.strip()!r} is not who is acting: you are {actual!r} ({how}); "
            "pgf takes identity from the operating system or the database login, never from an option"
        )
