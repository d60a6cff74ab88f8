"""The ``pgf`` entry point: hand a command to a running ``pgf daemon``, or run it here.

A ``pgf record|correct|void`` on an SQLite store, and the coordinator's read commands ``pgf status``
(without ``--plot``), ``history``, ``due`` and ``audit exceptions``, first look for the daemon's
socket beside the store (``STORE.sock``, see :mod:`pgf_events.cli.daemon`). When a daemon answers,
the command runs there (modules loaded, store open) and this process only prints its output and
exits with its code: the same bytes and exit code as the plain path. When none answers (no socket,
a stale one, another account's, a PostgreSQL store, any other command), the plain path runs in this
process, exactly as without a daemon.

Output that depends on the terminal stays byte-identical: this process tells the daemon the width
the plain path would use (``$COLUMNS``, the terminal's); on a terminal only what no terminal changes
goes to the daemon (``status``, whose lines are wrapped to that width, and the machine formats
``--json``, ``--csv``, ``--tsv``, ``--jsonl``), while human tables (rich, a pager) run here.

Who is acting is not something this process says: the daemon reads the caller's real uid from the
kernel (``SO_PEERCRED``) and records as that OS account, as the plain path does with ``getuid()``.
This process, in turn, only talks to a daemon run by its own account or the store file's owner.

Deliberately tiny: no click, no engine, no json; ``python -X importtime -m pgf_events.client``
shows what it costs.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

# Commands a daemon may run: they read nothing but their arguments and the store, write no file and
# print a few lines (the writes) or one document or table (the reads: a command word, or a group and
# its subcommand).
DAEMON_COMMANDS = frozenset({"record", "correct", "void"})
READ_COMMANDS = frozenset({"status", "history", "due", "audit exceptions"})
MACHINE_FORMATS = frozenset({"--json", "--csv", "--tsv", "--jsonl"})
WRITES_A_FILE = frozenset({"--plot"})  # a path the caller's folder and account must resolve: the plain path
REQUEST_V2 = "pgf-request-2"  # [REQUEST_V2, store, PGF_USER, PGF_WAIT, width, tty, *args]; v1 had no marker
DEFAULT_WIDTH = 100  # as pgf_events.cli._table.DEFAULT_WIDTH
SOCKET_SUFFIX = ".sock"
FALLBACK = 255  # the daemon's answer "run it yourself" (nothing was done)
_VALUE_OPTIONS = ("--db", "--user", "--protocol", "--wait")
# The read commands' options that take a value (``--columns --json`` gives --columns the value "--json").
_READ_VALUE_OPTIONS = frozenset({*_VALUE_OPTIONS, "--as-of", "--cutoff", "--columns", "--kind", "--site", "--on",
                                 "--plot"})
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def command_of(args: list[str]) -> tuple[str | None, str | None, bool]:
    """(the command word, the ``--db`` value, whether anything sends it to the plain path)."""
    command, _, db, plain = words_of(args)
    return command, db, plain


def words_of(args: list[str]) -> tuple[str | None, str | None, str | None, bool]:
    """(the command word, the word after it, the ``--db`` value, whether anything sends it to the plain path)."""
    db = command = second = None
    i = 0
    while i < len(args):
        token = args[i]
        name, eq, value = token.partition("=")
        if token == "--" or token in ("-h", "--help", "--version") or name == "--protocol":
            return command, second, db, True  # data follows, help, or a protocol override: the plain path
        if name in _VALUE_OPTIONS:
            if not eq:
                if i + 1 >= len(args):
                    return command, second, db, True
                value = args[i + 1]
                i += 1
            if name == "--db":
                db = value
        elif command is None:
            command = token
        elif second is None:
            second = token
        i += 1
    return command, second, db, False


def servable(args: list[str], tty: bool) -> bool:
    """Whether a daemon may run ``pgf ARGS`` for a caller whose stdout is (``tty``) or is not a terminal."""
    command, second, _, plain = words_of(args)
    if plain or command is None:
        return False
    if command in DAEMON_COMMANDS:
        return True
    if command not in READ_COMMANDS and f"{command} {second}" not in READ_COMMANDS:
        return False
    if any(a.partition("=")[0] in WRITES_A_FILE for a in args):
        return False
    # On a terminal, human tables are rich's (colours, the terminal's size, a pager): the plain path's.
    machine = any(a in MACHINE_FORMATS and (i == 0 or args[i - 1] not in _READ_VALUE_OPTIONS)
                  for i, a in enumerate(args))
    return not tty or command == "status" or machine


def output_width(environ: dict[str, str] | os._Environ[str], tty: bool) -> int:
    """The width ``pgf_events.cli._table.width`` gives in this process (``shutil.get_terminal_size``
    on a terminal, ``$COLUMNS`` or 100 otherwise), without importing shutil."""
    if not tty:
        try:
            return max(40, int(environ.get("COLUMNS", DEFAULT_WIDTH)))
        except ValueError:
            return DEFAULT_WIDTH
    try:
        columns = int(environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or DEFAULT_WIDTH  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return DEFAULT_WIDTH


def store_path(args: list[str], environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The SQLite file the command would use (as ``pgf_events.store.parse_url`` reads it), or None
    when it is not a file (PostgreSQL, memory) or the command cannot go to a daemon."""
    command, second, db, plain = words_of(args)
    if plain or not (command in DAEMON_COMMANDS or command in READ_COMMANDS or f"{command} {second}" in READ_COMMANDS):
        return None
    if environ.get("PGF_PROTOCOL") or environ.get("PGF_CIPHER_KEY"):
        return None  # a daemon serves plain stores under the trial protocol only
    url = (db or environ.get("PGF_DB") or "pgf-trial.db").strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "sqlite" or "?" in rest:
            return None
        rest = rest[1:] if rest.startswith("/") else rest
        if not rest or rest == ":memory:" or "%" in rest:
            return None
        url = rest
    return os.path.abspath(os.path.expanduser(url))


def socket_path(store: str) -> str:
    return store + SOCKET_SUFFIX


def encode(fields: list[str]) -> bytes:
    """Length-prefixed UTF-8 strings (arguments may hold any bytes the OS gave: surrogateescape)."""
    data = b"".join(struct.pack("!I", len(b)) + b for b in (f.encode("utf-8", "surrogateescape") for f in fields))
    return struct.pack("!I", len(data)) + data


def decode(payload: bytes) -> list[str]:
    out, i = [], 0
    while i < len(payload):
        (n,) = struct.unpack_from("!I", payload, i)
        out.append(payload[i + 4:i + 4 + n].decode("utf-8", "surrogateescape"))
        i += 4 + n
    if i != len(payload):
        raise ValueError("malformed message")
    return out


def receive(sock: socket.socket, limit: int = 1 << 26) -> bytes | None:
    """One length-prefixed message, or None if the peer closed the connection first."""
    head = _exactly(sock, 4)
    if head is None:
        return None
    (n,) = struct.unpack("!I", head)
    if n > limit:
        raise ValueError("message too long")
    return _exactly(sock, n)


def _exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, have = [], 0
    while have < n:
        chunk = sock.recv(min(n - have, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end, as the kernel knows it (``SO_PEERCRED``)."""
    import socket  # noqa: PLC0415 - only with a daemon's socket: the plain path never loads it

    _, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return uid


def _trusted_uids(store: str) -> set[int]:
    try:
        return {os.getuid(), os.stat(store).st_uid}
    except OSError:
        return {os.getuid()}


def _connect(store: str) -> socket.socket | None:
    """A connection to the store's daemon, or None when there is none we may trust."""
    path = socket_path(store)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    trusted = _trusted_uids(store)
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid not in trusted or len(path.encode()) > 107:
        return None
    import socket  # noqa: PLC0415 - only when a daemon's socket is there: the plain path never loads it

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        sock.connect(path)  # a stale socket (no daemon) refuses: the plain path runs
        if peer_uid(sock) not in trusted:
            raise OSError("the daemon runs as an account this one does not trust")
        sock.settimeout(None)
    except OSError:
        sock.close()
        return None
    return sock


def via_daemon(args: list[str]) -> int | None:
    """Run ``pgf ARGS`` in the store's daemon; its exit code, or None when the plain path must run."""
    store = store_path(args, os.environ)
    if store is None:
        return None
    tty = os.isatty(1)
    if not servable(args, tty):
        return None
    sock = _connect(store)
    if sock is None:
        return None
    with sock:
        request = [REQUEST_V2, store, os.environ.get("PGF_USER", ""), os.environ.get("PGF_WAIT", ""),
                   str(output_width(os.environ, tty)), "1" if tty else "", *args]
        try:
            sock.sendall(encode(request))
        except OSError:
            return None  # it went away before it had the command: nothing was done
        try:
            reply = receive(sock)
        except (OSError, ValueError):
            reply = None
    if reply is None:
        sys.stderr.write(f"Error: the pgf daemon of {store} stopped before answering; check with "
                         "'pgf history' whether the command was recorded before repeating it\n")
        return 1
    code_text, out, err = decode(reply)
    code = int(code_text)
    if code == FALLBACK:
        return None
    for stream, text in ((sys.stdout, out), (sys.stderr, err)):
        if text:
            stream.buffer.write(text.encode("utf-8", "surrogateescape"))
            stream.flush()
    return code


def main() -> None:
    try:
        code = via_daemon(sys.argv[1:])
    except BrokenPipeError:
        code = 0
    except OSError:  # e.g. the current folder was removed: the plain path says what is wrong
        code = None
    if code is not None:
        sys.exit(code)
    from pgf_events.cli import main as plain  # noqa: PLC0415 - the plain path: load the engine only now

    plain()


if __name__ == "__main__":
    main()
