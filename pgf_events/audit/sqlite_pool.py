"""SQLite connections that keep their prepared statements (see :class:`StatementKeepingPool`)."""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteConnection, SQLiteConnectionPool

STATEMENTS_KEPT = 128  # prepared statements a connection keeps (sqlite3's own default)


class StatementKeepingPool(SQLiteConnectionPool):
    """The library's pool, whose connections keep :data:`STATEMENTS_KEPT` prepared statements. The
    library passes ``cached_statements=True``, which sqlite3 takes as 1: a save's eight statements
    were each compiled again every time (a twentieth of a record's time in ``pgf shell``). Otherwise
    the library's connection exactly (eventsourcing 9.5 ``SQLiteConnectionPool._create_connection``)."""

    def _create_connection(self) -> SQLiteConnection:
        try:
            c = sqlite3.connect(database=self.db_name, uri=True, check_same_thread=False, isolation_level=None,
                                cached_statements=STATEMENTS_KEPT,
                                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            cursor = c.cursor()
            cursor.execute("PRAGMA journal_mode;")
            if cursor.fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL;")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=c, max_age=self.max_age)
