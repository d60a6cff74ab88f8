"""A second process that writes a bulk import into SQLite while the importer checks the lines after.

SQLite's share of an import (each row's append-only trigger, the primary-key index, the chain
table) is about as long as the importer's own work on the line. With two usable cores
(:func:`pgf_events.gc_tuning.usable_cpus`), :meth:`ChainedSQLiteRecorder.bulk` forks this writer:
it opens its own connection to the store, takes the write lock (``BEGIN IMMEDIATE``) before the
import checks anything, and then inserts and chains each chunk of rows it is handed, in the order
handed, in that one transaction, exactly as the importing process would have (the same
``_insert_rows``: the same row ids, links and head). It commits only when told to, after the last
chunk; the first failure is sent back at once (and raised in the importer at its next chunk or at
the commit), and nothing after it is written. The importer holds at most two chunks ahead (the pipe
blocks), so memory stays bounded. The writer dies with its parent (:mod:`pgf_events.workers`):
a killed import leaves no process holding the lock, and SQLite rolls the transaction back.

A thread would not do: a statement runs without Python's lock, but ``executemany`` takes it back
for every row, and a busy importing thread keeps it for milliseconds at a time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.sqlite import SQLiteCursor

from pgf_events.store import is_locked
from pgf_events.workers import die_with_parent

Rows = Sequence[tuple[str, int, str, bytes]]  # (stream id as 32 hex digits, version, topic, state)
Times = tuple[datetime, datetime] | None


class Locked(Exception):
    """The writer could not take SQLite's write lock within the store's wait."""


class WriterProcess:
    """The importer's side: ``put`` chunks, then ``commit`` (or ``abandon``)."""

    def __init__(self, insert_rows: Callable[[Any, Rows, Times], Any], path: str, timeout: float):
        context = multiprocessing.get_context("fork")  # the child runs the recorder's own code, no import
        rows_in, self._rows = context.Pipe(duplex=False)
        self._answers, answers_out = context.Pipe(duplex=False)
        _widen(self._rows.fileno())
        self._process = context.Process(target=_child, args=(insert_rows, path, timeout, rows_in, answers_out,
                                                             os.getpid()),
                                        name="pgf-import-writer", daemon=True)
        self._process.start()
        rows_in.close()
        answers_out.close()
        answer = self._receive()
        if answer[0] == "locked":
            self._stop()
            raise Locked(answer[1])
        assert answer[0] == "ready", answer

    def put(self, rows: Rows, times: Times) -> None:
        if self._answers.poll():  # the writer failed on an earlier chunk
            self._receive()
        self._rows.send_bytes(pickle.dumps(("rows", rows, times), protocol=pickle.HIGHEST_PROTOCOL))

    def commit(self) -> None:
        """Wait for every chunk to be written, then commit; raises the writer's first failure."""
        self._rows.send_bytes(pickle.dumps(("commit",)))
        answer = self._receive()
        assert answer[0] == "committed", answer
        self._stop()

    def abandon(self) -> None:
        """Roll back (never raises): the writer ends without committing."""
        with contextlib.suppress(OSError):
            self._rows.send_bytes(pickle.dumps(("rollback",)))
        self._stop()

    def _receive(self) -> tuple[Any, ...]:
        try:
            answer = pickle.loads(self._answers.recv_bytes())
        except EOFError:
            raise OSError("the import's writer process ended unexpectedly; nothing was written") from None
        if answer[0] == "failed":
            self.abandon()
            raise answer[1]
        return answer  # type: ignore[no-any-return]

    def _stop(self) -> None:
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._rows.close()
        self._answers.close()


def _widen(fd: int) -> None:
    """Let the pipe hold a whole chunk (Linux; up to ``/proc/sys/fs/pipe-max-size``): the importer hands
    it over in one write and goes on, instead of waiting for the writer to be scheduled every 64 KiB
    (on a busy machine, a few milliseconds each time)."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):
        pass  # a smaller pipe only makes the importer wait more often


PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size; a chunk of 2,000 lab events pickles to ~0.8 MB


def _child(insert_rows: Callable[[Any, Rows, Times], Any], path: str, timeout: float, rows: Any, answers: Any,
           parent: int) -> None:
    die_with_parent(parent)
    try:
        _serve(insert_rows, path, timeout, rows, answers)
    finally:
        os._exit(0)  # nothing inherited from the importer is closed or flushed here


def _serve(insert_rows: Callable[[Any, Rows, Times], Any], path: str, timeout: float, pipe: Any,
           answers: Any) -> None:
    def send(*answer: Any) -> None:
        try:
            data = pickle.dumps(answer)
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its type and text
            error = answer[1]
            data = pickle.dumps(("failed", RuntimeError(f"{type(error).__name__}: {error}")))
        answers.send_bytes(data)

    try:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        cursor = SQLiteCursor(db.cursor())
        cursor.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        send("locked", str(e)) if is_locked(e) else send("failed", e)
        return
    except Exception as e:  # noqa: BLE001 - handed to the importer
        send("failed", e)
        return
    send("ready")
    failed = False
    while True:
        message = pickle.loads(pipe.recv_bytes())
        if message[0] == "rows":
            if failed:
                continue
            try:
                insert_rows(cursor, message[1], message[2])
            except BaseException as e:  # noqa: BLE001 - handed to the importer, which rolls back
                failed = True
                send("failed", e)
        elif message[0] == "commit" and not failed:
            try:
                db.commit()
            except BaseException as e:  # noqa: BLE001
                send("failed", e)
                return
            send("committed")
            return
        else:
            db.rollback()
            return
