"""``pgf daemon``: keep the engine loaded and an SQLite store open, so a ``pgf record`` or a ``pgf status``
costs little more than starting Python.

It listens on a Unix socket beside the store (``STORE.sock``). The ``pgf`` entry point
(:mod:`pgf_events.client`) sends ``record``, ``correct`` and ``void``, and the reads ``status``,
``history``, ``due`` and ``audit exceptions`` there when it answers, and runs them itself when it
does not: the daemon is an accelerator, never a requirement. A read is checked exactly as in its own
process (the caller's role, its sites, a whole-store command refused to a site-scoped user) and
printed at the caller's width.

Identity is no weaker than the plain path's. The acting user is the OS account of the caller's real
uid, which the kernel gives with the connection (``SO_PEERCRED``): nothing the caller sends names
who it is, and ``--user``/``PGF_USER`` may only restate it, as always. Who may connect is who may
write the store file: the socket gets the file's write permissions (owner, group, others) and the
daemon checks each caller's uid and groups against the file again; anyone else is told to run the
command themselves, where the operating system decides as before. Commands run one at a time.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import socketserver
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import click

from pgf_events.cli._resident import prepare
from pgf_events.client import (
    _CRED,
    DAEMON_COMMANDS,
    FALLBACK,
    REQUEST_V2,
    command_of,
    decode,
    encode,
    receive,
    servable,
    socket_path,
)
from pgf_events.domain.errors import PgfError

# The daemon's own settings must not reach the commands it runs for others.
_PRIVATE_ENV = ("PGF_DB", "PGF_USER", "PGF_PROTOCOL", "PGF_WAIT")


def may_write(path: str, uid: int) -> bool:
    """Whether the account ``uid`` may write ``path`` by its mode bits (as the kernel would decide)."""
    if uid == 0:
        return True
    try:
        st = os.stat(path)
        account = pwd.getpwuid(uid)
    except (OSError, KeyError):
        return False
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid in os.getgrouplist(account.pw_name, account.pw_gid):
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def socket_mode(store: str) -> int:
    """The socket's permissions: connect (write) for whoever may write the store file."""
    mode = os.stat(store).st_mode
    return ((0o600 if mode & stat.S_IWUSR else 0) | (0o060 if mode & stat.S_IWGRP else 0)
            | (0o006 if mode & stat.S_IWOTH else 0))


def claim_socket(path: str) -> str | None:
    """Make the socket path free: a stale socket (nobody answers) is removed. Returns a note, or raises
    when another daemon answers or the path is something else."""
    if len(path.encode()) > 107:
        raise PgfError(f"the socket path {path} is longer than the 107 bytes Unix sockets allow; "
                       "move the store to a shorter path")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        raise PgfError(f"{path} exists and is not a socket; remove it if it is not needed")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: left by a daemon that was killed
        return f"removed a stale socket {path} (its daemon had stopped)"
    finally:
        probe.close()
    raise PgfError(f"a pgf daemon already serves this store on {path}")


class Coordinator(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One store, one open application, one command at a time."""

    daemon_threads = True

    def __init__(self, store: str, app: Any, notify: Any = None):
        self.store = store
        self.app = app
        self.lock = threading.Lock()
        self.notify = notify or (lambda message: None)
        self.path = socket_path(store)
        note = claim_socket(self.path)
        if note:
            self.notify(note)
        old = os.umask(0o177)  # no moment with looser permissions than the store's
        try:
            super().__init__(self.path, Handler)
        finally:
            os.umask(old)
        self.inode = os.lstat(self.path).st_ino
        os.chmod(self.path, socket_mode(store))
        if socket_mode(store) & 0o060:
            try:
                os.chown(self.path, -1, os.stat(store).st_gid)
            except PermissionError:
                self.notify(f"note: could not give {self.path} the store's group; its group cannot use the daemon")

    def remove_socket(self) -> None:
        """Unlink the socket if it is still ours (not one a later daemon made)."""
        try:
            if os.lstat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass

    def answer(self, peer: int, fields: list[str]) -> tuple[int, str, str]:
        """Run one request ``[REQUEST_V2, store, PGF_USER, PGF_WAIT, width, tty, *args]`` (or a first
        version's ``[store, PGF_USER, PGF_WAIT, *args]``, writes only) for the account of uid ``peer``."""
        width: int | None = None
        tty = False
        if fields and fields[0] == REQUEST_V2:
            _, store, requested_user, wait, width_text, tty_text, *args = fields
            width, tty = int(width_text), bool(tty_text)
        else:
            store, requested_user, wait, *args = fields
            if command_of(args)[0] not in DAEMON_COMMANDS:  # a first-version client sent writes only
                return FALLBACK, "", ""
        if not os.path.exists(store) or not os.path.samefile(store, self.store) or not self._servable(args, tty):
            return FALLBACK, "", ""
        if peer != os.getuid() and not may_write(self.store, peer):
            return FALLBACK, "", ""  # let the operating system decide, in the caller's own process
        try:
            account = pwd.getpwuid(peer).pw_name
        except KeyError:
            return FALLBACK, "", ""  # the plain path says that a nameless uid cannot act
        if requested_user and "--user" not in {a.partition("=")[0] for a in args}:
            args = ["--user", requested_user, *args]
        from pgf_events import identity  # noqa: PLC0415
        from pgf_events.cli._resident import run_captured  # noqa: PLC0415

        with self.lock, identity.authenticator_replaced(lambda: account), _waiting(wait):
            return run_captured(args, self.app, width)

    @staticmethod
    def _servable(args: list[str], tty: bool) -> bool:
        return servable(args, tty)


class _waiting:
    """``PGF_WAIT`` as the caller set it, for the command's duration (the daemon's own is removed)."""

    def __init__(self, value: str):
        self.value = value

    def __enter__(self) -> None:
        if self.value:
            os.environ["PGF_WAIT"] = self.value

    def __exit__(self, *exc: Any) -> None:
        os.environ.pop("PGF_WAIT", None)


class Handler(socketserver.BaseRequestHandler):
    server: Coordinator

    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            _, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
            payload = receive(sock, limit=1 << 20)
            if payload is None:
                return
            code, out, err = self.server.answer(uid, decode(payload))
            sock.sendall(encode([str(code), out, err]))
        except (OSError, ValueError, UnicodeError):
            return  # the caller went away or sent garbage: nothing was run for it


@click.command()
@click.pass_obj
def daemon(state: Any) -> None:
    """Keep the engine loaded and the SQLite store open for 'pgf record', 'correct', 'void', 'status',
    'history', 'due' and 'audit exceptions' on this computer, until Ctrl-C or SIGTERM.

    It listens on a Unix socket beside the store (STORE.sock). While it runs, those
    commands are sent to it and print exactly what they would print otherwise, in a
    few milliseconds; when it is not running they run as before. Each command acts
    as the OS account that typed it (read from the kernel, never from the command),
    with that account's role and sites, and only accounts that may write the store
    file can use the socket. On a terminal, human tables (history, due, exceptions)
    are printed by the command's own process; their --json, --csv and the status are
    answered by the daemon.

    \b
    Example:
      pgf daemon &
      pgf record lab S001 --date 2025-03-01 --anc 0.4     # answered by the daemon
      pgf status S001 --json                               # answered by the daemon
    """
    from pgf_events.store import parse_url  # noqa: PLC0415

    config = parse_url(state.db_url)
    if config.backend != "sqlite" or config.sqlite_path is None:
        raise PgfError("pgf daemon serves an SQLite store file; on PostgreSQL each command talks to the server")
    if config.cipher_key:
        raise PgfError("pgf daemon does not serve an encrypted store; its commands run as usual")
    state.refuse_protocol_override("pgf daemon")
    app = state.app(must_exist=True)
    prepare(app)
    store = str(Path(config.sqlite_path).resolve())
    for name in _PRIVATE_ENV:
        os.environ.pop(name, None)
    server = Coordinator(store, app, notify=lambda message: click.echo(message, err=True))

    def stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    click.echo(f"pgf daemon: serving {store} on {server.path} (pid {os.getpid()}); Ctrl-C to stop", err=True)
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.remove_socket()
        click.echo("pgf daemon: stopped", err=True)
