"""``pgf daemon`` (issue 18 item 2): real processes over a real Unix socket.

The client (the ``pgf`` entry point, :mod:`pgf_events.client`) must print the same bytes and exit
with the same code as the plain path, record as the caller's OS account read from the kernel, and
run the plain path whenever no daemon answers (none, a stale socket, another account's).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pgf_events import client
from tests.conftest import REGISTER, SCREEN_OK

CLIENT = [sys.executable, "-m", "pgf_events.client"]
PLAIN = [sys.executable, "-c", "from pgf_events.cli import main; main()"]
ME = pwd.getpwuid(os.getuid()).pw_name
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z")  # when it was recorded differs, nothing else


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PGF_")}


def start_daemon(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*PLAIN, "--db", str(db), "daemon"], env=env(), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "pgf daemon: serving" in line, line
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def pgf(db: Path, *args: str, cmd: list[str] = CLIENT, **kw: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, "--db", str(db), *args], env={**env(), **kw}, capture_output=True, text=True,
                          timeout=120)


def served(db: Path, *args: str, **kw: str) -> subprocess.CompletedProcess[str]:
    """Through the client, proving where it ran: the engine's CLI is never imported when the daemon answers."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "pgf_events.client", "--db", str(db), *args],
                       env={**env(), **kw}, capture_output=True, text=True, timeout=120)
    assert "pgf_events.cli" not in r.stderr and "eventsourcing" not in r.stderr, "the plain path ran"
    r.stderr = "".join(line + "\n" for line in r.stderr.splitlines() if not line.startswith("import time:"))
    return r


SHEET = [
    ["record", "register", "S001", *REGISTER],
    ["record", "consent", "S001", "--date", "2025-02-18"],
    ["record", "screen", "S001", "--date", "2025-02-20", *SCREEN_OK],
    ["record", "enrol", "S001", "--date", "2025-02-24"],
    ["record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61"],
    ["record", "lab", "S001", "--date", "2025-03-01", "--hb", "7.2"],  # refused: g/dL without the unit
    ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--hb", "7.2", "--hb-unit", "g/dL"],
    ["record", "lab", "S001", "--date", "2025-03-04", "--anc", "0.7", "--json"],
    ["record", "infusion", "S001", "--date", "2025-02-28", "--cells", "6.1e7", "--weight-kg", "61"],  # deviation
    ["correct", "S001#6", "--set", "anc=0.45", "--reason", "transcription error"],
    ["void", "S001#7", "--reason", "wrong patient", "-q"],
    ["record", "lab", "S404", "--date", "2025-03-01", "--anc", "1"],  # no such patient
    ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "x"],  # usage error: exit 2
    ["record", "lab", "S001", "--user", "someone-else", "--date", "2025-03-05", "--anc", "1"],  # refused
]


def history(db: Path) -> list[dict[str, object]]:
    out = pgf(db, "history", "S001", "--json", cmd=PLAIN)
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)
    events = events["events"] if isinstance(events, dict) else events
    return [{k: v for k, v in e.items() if k not in ("recorded_at", "recorded")} for e in events]


def test_the_daemon_answers_exactly_as_the_plain_path(tmp_path: Path) -> None:
    via, plain = tmp_path / "via.db", tmp_path / "plain.db"
    pgf(plain, "history", "S001", cmd=PLAIN)  # both stores exist before the daemon starts
    assert pgf(via, "record", "lab", "S001", "--date", "2025-03-01", "--anc", "1").returncode == 1
    daemon = start_daemon(via)
    try:
        for args in SHEET:
            a, b = served(via, *args), pgf(plain, *args, cmd=PLAIN)
            same = [(r.returncode, STAMP.sub("T", r.stdout), r.stderr) for r in (a, b)]
            assert same[0] == same[1], args
        assert all(served(via, *args).returncode != 0 for args in SHEET[-3:])
        # commands that read files, write files or take stdin are the plain path's
        assert "eventsourcing" in pgf(via, "import", "-", cmd=[sys.executable, "-X", "importtime", "-m",
                                                               "pgf_events.client"]).stderr
        assert "eventsourcing" in pgf(via, "status", "S001", "--plot", str(tmp_path / "s.png"),
                                      cmd=[sys.executable, "-X", "importtime", "-m", "pgf_events.client"]).stderr
    finally:
        stop(daemon)
    assert history(via) == history(plain)
    assert {e["recorded_by"] for e in history(via)} == {ME}
    assert not client.socket_path(str(via)) or not Path(client.socket_path(str(via))).exists()


READS = [
    ["status", "S001"], ["status", "S001", "--json"], ["status", "s001", "--as-of", "2099-01-01", "--cutoff", "2025-03-02"],
    ["status", "S404"], ["status", "S001", "--as-of", "not a time"], ["status"],
    ["history", "S001"], ["history", "S001", "--json"], ["history", "S001", "--csv", "--columns", "ref,type"],
    ["history", "S001", "--wide"], ["due", "--json"], ["due", "--on", "2025-03-10"], ["due", "--site", "XQ"],
    ["audit", "exceptions", "--json"], ["audit", "exceptions"], ["audit", "exceptions", "--kind", "late_entry", "--tsv"],
    ["audit", "exceptions", "--kind", "nothing"], ["status", "S001", "--user", "someone-else"],
]


def test_reads_answered_by_the_daemon_print_what_the_plain_path_prints(tmp_path: Path) -> None:
    """status, history, due and audit exceptions: the same bytes and exit code at any width, and the
    same role and site checks (a site-scoped user is refused another site's patient and whole-store
    reports exactly as in its own process)."""
    db = tmp_path / "t.db"
    for args in SHEET[:-3]:
        pgf(db, *args, cmd=PLAIN)
    pgf(db, "record", "register", "S002", *REGISTER[:1], "XQ", *REGISTER[2:], cmd=PLAIN)
    daemon = start_daemon(db)
    try:
        def same(args: list[str], **kw: str) -> None:
            a, b = served(db, *args, **kw), pgf(db, *args, cmd=PLAIN, **kw)
            assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), (args, kw)

        for args in READS:
            same(args)
        for columns in ("60", "250", "12", "wide"):  # the caller's width, not the daemon's
            same(["status", "S001"], COLUMNS=columns)
            same(["history", "S001"], COLUMNS=columns)
        # a site-scoped coordinator: nobody administers, ME coordinates site PKU only
        for args in (["users", "grant", ME, "admin", "--reason", "set-up"], ["users", "grant", "nobody", "admin"],
                     ["users", "grant", ME, "coordinator", "--site", "PKU"], ["users", "revoke", ME, "admin"]):
            assert pgf(db, *args, cmd=PLAIN).returncode == 0, args
        for args in (["status", "S002"], ["status", "S002", "--json"], ["history", "S002", "--json"],
                     ["audit", "exceptions", "--json"], ["due", "--json"], ["status", "S001", "--json"]):
            same(args)
        assert "covers every site" in served(db, "audit", "exceptions", "--json").stderr
        assert "site PKU; S002 is at site XQ" in served(db, "status", "S002").stderr
    finally:
        stop(daemon)


def test_what_the_client_sends_to_a_daemon() -> None:
    assert client.servable(["status", "S001"], tty=True)  # wrapped to the width the client sends
    assert client.servable(["history", "S001"], tty=False) and not client.servable(["history", "S001"], tty=True)
    assert client.servable(["history", "S001", "--json"], tty=True)
    assert client.servable(["audit", "exceptions", "--csv"], tty=True)
    assert not client.servable(["history", "S001", "--columns", "--json"], tty=True)  # a value, not the format
    assert not client.servable(["status", "S001", "--plot", "x.png"], tty=False)  # writes a file: here
    assert not client.servable(["audit", "verify"], tty=False) and not client.servable(["report", "dosing"], tty=False)
    assert client.servable(["--db", "x.db", "audit", "--user", "me", "exceptions"], tty=False)
    from pgf_events.cli._table import width

    for value in (None, "60", "12", "0", "-3", " 80 ", "1_000", "x", ""):
        environ = {} if value is None else {"COLUMNS": value}
        with pytest.MonkeyPatch.context() as mp:
            if value is None:
                mp.delenv("COLUMNS", raising=False)
            else:
                mp.setenv("COLUMNS", value)
            mp.setattr(sys.stdout, "isatty", lambda: False)
            assert client.output_width(environ, tty=False) == width(), value


def test_without_a_daemon_and_with_a_stale_socket_the_plain_path_runs(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    assert pgf(db, "record", "register", "S001", *REGISTER).returncode == 0  # no daemon: plain
    daemon = start_daemon(db)
    os.kill(daemon.pid, signal.SIGKILL)  # leaves its socket behind
    daemon.wait()
    sock = Path(client.socket_path(str(db)))
    assert sock.is_socket()
    r = pgf(db, "record", "consent", "S001", "--date", "2025-02-18", "-q")
    assert (r.returncode, r.stdout, r.stderr) == (0, "S001#2\n", "")
    again = subprocess.Popen([*PLAIN, "--db", str(db), "daemon"], env=env(), stderr=subprocess.PIPE, text=True)
    try:
        assert again.stderr is not None
        assert "removed a stale socket" in again.stderr.readline()
        assert "serving" in again.stderr.readline()
        # a second daemon on the same store is refused, one line
        second = pgf(db, "daemon", cmd=PLAIN)
        assert second.returncode == 1 and second.stderr.startswith("Error: a pgf daemon already serves")
        assert served(db, "record", "screen", "S001", "--date", "2025-02-20", *SCREEN_OK, "-q").stdout == "S001#3\n"
    finally:
        stop(again)
    assert not sock.exists()


def test_the_daemon_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    r = pgf(tmp_path / "x.db", "daemon", cmd=PLAIN)
    assert r.returncode == 1 and "no trial store" in r.stderr
    r = subprocess.run([*PLAIN, "--db", "memory://", "daemon"], env=env(), capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("Error: pgf daemon serves an SQLite store file")
    (tmp_path / "t.db.sock").write_text("not a socket")
    pgf(tmp_path / "t.db", "record", "register", "S001", *REGISTER, cmd=PLAIN)
    r = pgf(tmp_path / "t.db", "daemon", cmd=PLAIN)
    assert r.returncode == 1 and "is not a socket" in r.stderr and "Traceback" not in r.stderr


def _as_other_account(sock_store: Path, request: list[str], uid: int, gid: int) -> tuple[str, ...] | None:
    """Fork a process that becomes ``uid`` and talks to the daemon as the client does; its reply."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: another OS account, a real connection with its own credentials
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            conn = client._connect(str(sock_store))
            if conn is None:
                os.write(write, b"no daemon")
            else:
                with conn:
                    conn.sendall(client.encode(request))
                    os.write(write, client.receive(conn) or b"closed")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return None if data == b"no daemon" else tuple(client.decode(data))


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another OS account needs root")
def test_another_account_acts_as_itself_or_not_at_all() -> None:
    with tempfile.TemporaryDirectory(prefix="pgf-shared-") as name:  # pytest's tmp_path is closed to others
        os.chmod(name, 0o755)
        _other_account(Path(name))


def _other_account(folder: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    db = folder / "t.db"
    assert pgf(db, "record", "register", "S001", *REGISTER).returncode == 0
    daemon = start_daemon(db)
    try:
        register = [str(db), "", "", "record", "register", "S002", *REGISTER]
        # the store is the owner's alone: the socket refuses the connection (the OS decides)
        assert _as_other_account(db, register, nobody.pw_uid, nobody.pw_gid) is None
        # even through a socket opened to everyone, the daemon checks the caller against the store file
        os.chmod(client.socket_path(str(db)), 0o666)
        assert _as_other_account(db, register, nobody.pw_uid, nobody.pw_gid) == (str(client.FALLBACK), "", "")
    finally:
        stop(daemon)
    os.chmod(folder, 0o777)
    for p in folder.iterdir():
        os.chmod(p, 0o666)
    daemon = start_daemon(db)  # a store everyone may write: everyone may use the daemon, as themselves
    try:
        assert oct(os.stat(client.socket_path(str(db))).st_mode & 0o777) == "0o666"
        code, out, err = _as_other_account(db, register, nobody.pw_uid, nobody.pw_gid) or ("", "", "")
        assert (code, out.split()[0], err) == ("0", "S002#1", ""), (code, out, err)
        claim = [str(db), ME, "", "record", "consent", "S002", "--date", "2025-02-18"]  # PGF_USER=root
        code, out, err = _as_other_account(db, claim, nobody.pw_uid, nobody.pw_gid) or ("", "", "")
        assert code == "1" and err.startswith(f"Error: --user (or PGF_USER) '{ME}' is not who is acting: "
                                              "you are 'nobody'"), err
        forged = ["/etc/passwd", "", "", "record", "consent", "S002", "--date", "2025-02-18"]
        assert _as_other_account(db, forged, nobody.pw_uid, nobody.pw_gid) == (str(client.FALLBACK), "", "")
    finally:
        stop(daemon)
    who = json.loads(pgf(db, "history", "S002", "--json", cmd=PLAIN).stdout)
    events = who["events"] if isinstance(who, dict) else who
    assert [e["recorded_by"] for e in events] == ["nobody"]


@pytest.mark.skipif(os.getuid() != 0, reason="making another account's socket needs root")
def test_the_client_trusts_no_other_accounts_daemon(tmp_path: Path) -> None:
    """A socket that another account made beside my store is not where my commands go."""
    db = tmp_path / "t.db"
    pgf(db, "record", "register", "S001", *REGISTER, cmd=PLAIN)
    path = client.socket_path(str(db))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    try:
        os.chown(path, 65534, 65534)  # someone else's socket
        assert client._connect(str(db)) is None
        r = pgf(db, "record", "consent", "S001", "--date", "2025-02-18", "-q")
    finally:
        listener.close()
        os.unlink(path)
    assert (r.returncode, r.stdout) == (0, "S001#2\n")
