"""Operations (issue 18 item 5): workers die with their parent, a busy store says so within --wait,
and a read-only store or medium is verified, read and reported with nothing written.

Real processes, real kills, real locks; the read-only medium is a read-only bind mount when the
tests run as root, and the read-only file and folder are tried by a forked process that becomes
another OS account (root writes through any mode bits).
"""

from __future__ import annotations

import os
import pwd
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_daemon import PLAIN, env
from tests.conftest import fingerprint

KILLED_PARENT = """
import sys, time
from pgf_events.projections import replay
replay.PARALLEL_MIN_EVENTS, replay.CHUNK_EVENTS = 1, 1   # a worker for this small store
def slow(*args):                                          # the parent's own share never ends
    print("workers started", flush=True)
    time.sleep(120)
replay.derive_chunk = slow
from pgf_events.projections import store
init = store.ProjectionStore.__init__
store.ProjectionStore.__init__ = lambda self, app, **kw: init(self, app, **{**kw, "batch_size": 10})  # replay it
from pgf_events.cli import main
sys.argv = ["pgf", "--db", sys.argv[1], "projections", "rebuild"]
main()
"""


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("ops") / "demo.db"
    subprocess.run([*PLAIN, "--db", str(db), "demo", "--patients", "6"], env=env(), check=True, capture_output=True)
    return db


def test_rebuild_workers_die_when_the_parent_is_killed(demo_store: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(demo_store)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"workers started\n"
    workers = children(proc.pid)
    assert workers, "the rebuild started no worker"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a worker outlived its parent"
    assert proc.stdout.read() == b""  # nobody holds the caller's pipe any more: EOF, not a hang


@pytest.fixture
def held_lock(demo_store: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store's write lock until it is told to stop."""
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(demo_store)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    yield holder
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)


def count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("args", [
    ["record", "lab", "S003", "--date", "2025-12-01", "--anc", "1.1"],
    ["--wait", "1", "report", "endpoints"],
    ["projections", "rebuild"],
    ["import", "LINES"],
])
def test_a_locked_store_says_so_within_the_wait(demo_store: Path, held_lock: subprocess.Popen[str],
                                                args: list[str], tmp_path: Path) -> None:
    lines = tmp_path / "labs.jsonl"
    lines.write_text("".join(f'{{"record":"lab","subject":"S003","date":"2025-12-{d:02d}","anc":1.2}}\n'
                             for d in range(1, 20)))
    args = [str(lines) if a == "LINES" else a for a in args]
    subprocess.run([*PLAIN, "--db", str(demo_store), "record", "lab", "S003", "--date", "2025-11-30", "--anc", "1"],
                   env=env(), capture_output=True)  # (runs before the lock: the read models have work to do)
    before = count(demo_store)
    started = time.monotonic()
    r = subprocess.run([*PLAIN, "--db", str(demo_store), *args], env={**env(), "PGF_WAIT": "2"},
                       capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"Error: the store sqlite:///{demo_store} is locked by another process "
                               f"(held by pid {held_lock.pid} (python"), lines[0]
    assert "within" in lines[0] and "--wait SECONDS (or PGF_WAIT)" in lines[0]
    assert "kept writing" not in lines[0]
    assert took < 30, took
    assert count(demo_store) == before


READS = [
    ["audit", "verify"], ["audit", "verify", "--deep"], ["status", "S003"], ["status", "S003", "--json"],
    ["history", "S003"], ["report", "endpoints"], ["report", "safety", "--csv"], ["patients"],
    ["projections", "status"], ["projections", "verify"], ["report", "endpoints", "--as-of", "2099-01-01"],
    ["audit", "exceptions"], ["queries"],
]
WRITES = [["record", "lab", "S003", "--date", "2025-12-01", "--anc", "1.1"],
          ["correct", "S003#5", "--set", "date=2025-01-01", "--reason", "x"], ["projections", "rebuild"]]


def _check_read_only(db: Path, run: object) -> None:
    assert callable(run)
    exports = Path(tempfile.mkdtemp())
    os.chmod(exports, 0o777)  # the inspector's own folder, elsewhere
    before = fingerprint(f"sqlite:///{db}")
    files = sorted(p.name for p in db.parent.iterdir())
    for args in READS:
        code, out, err = run(args)
        assert code == 0 and "Traceback" not in err and out, (args, err)
    code, out, err = run(["export", "odm", str(exports / "trial.xml")])
    assert code == 0 and (exports / "trial.xml").stat().st_size > 1000, err
    for args in WRITES:
        code, out, err = run(args)
        assert code == 1 and err.startswith("Error: the store ") and "read-only" in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert fingerprint(f"sqlite:///{db}") == before
    assert sorted(p.name for p in db.parent.iterdir()) == files  # not even a lock or index file


def archive(store: Path, copy: Path) -> Path:
    """An inspector's copy: the store's pages, in WAL mode as pgf keeps it, closed cleanly."""
    target = sqlite3.connect(copy)
    sqlite3.connect(store).backup(target)
    target.execute("PRAGMA journal_mode=WAL")
    target.close()
    return copy


def _plain(db: Path, args: list[str]) -> tuple[int, str, str]:
    r = subprocess.run([*PLAIN, "--db", str(db), *args], env=env(), capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="a read-only bind mount needs root")
def test_an_archived_copy_on_read_only_media_is_verified_read_and_reported(demo_store: Path) -> None:
    with tempfile.TemporaryDirectory() as source, tempfile.TemporaryDirectory() as mount:
        archive(demo_store, Path(source) / "archive.db")
        if subprocess.run(["mount", "--bind", "-o", "ro", source, mount], capture_output=True).returncode:
            pytest.skip("this machine does not allow a read-only bind mount")
        try:
            archived = Path(mount) / "archive.db"
            _check_read_only(archived, lambda args: _plain(archived, args))
            code, _, err = _plain(archived, ["status", "S003"])
            assert code == 0, err
        finally:
            subprocess.run(["umount", mount], check=True)


@pytest.mark.skipif(os.getuid() != 0, reason="trying the mode bits needs another account (root writes anyway)")
def test_a_read_only_file_and_folder_are_read_with_nothing_written(demo_store: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        db = archive(demo_store, folder / "archive.db")
        for p in [db, *folder.iterdir()]:
            os.chmod(p, 0o444)
        os.chmod(folder, 0o555)

        def as_nobody(args: list[str]) -> tuple[int, str, str]:
            """A forked process that becomes 'nobody' and runs the CLI in it (its Python is already loaded)."""
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    os.setgroups([])
                    os.setgid(nobody.pw_gid)
                    os.setuid(nobody.pw_uid)
                    sys.stdout = open(out_w, "w", closefd=False)  # noqa: SIM115 - the child's own streams
                    sys.stderr = open(err_w, "w", closefd=False)  # noqa: SIM115
                    from pgf_events.cli import cli

                    try:
                        cli.main(["--db", str(db), *args], prog_name="pgf")
                    except SystemExit as e:
                        code = e.code if isinstance(e.code, int) else 1
                except BaseException:  # a bug: show it to the test
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            os.close(out_w)
            os.close(err_w)
            with os.fdopen(out_r) as out, os.fdopen(err_r) as err:
                o, e = out.read(), err.read()
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), o, e

        # The child cannot import what 'nobody' may not read (this Python lives under /root): load every
        # module the commands need here first, on a scratch copy.
        from click.testing import CliRunner

        from pgf_events.cli import cli

        scratch = archive(demo_store, Path(tempfile.mkdtemp()) / "scratch.db")
        for args in [*READS, ["export", "odm", str(scratch) + ".xml"], *WRITES]:
            CliRunner().invoke(cli, ["--db", str(scratch), *args])
        try:
            _check_read_only(db, as_nobody)
        finally:
            os.chmod(folder, 0o755)
