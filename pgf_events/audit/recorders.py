"""Application recorders that chain every event in the same transaction that stores it.

``store.py`` selects these classes through the library's ``APPLICATION_RECORDER_TOPIC`` setting.
Inserting events also appends one link per event to ``pgf_chain`` (position = notification id,
see :mod:`pgf_events.audit.chain`) and moves the one-row ``pgf_chain_head`` forward, all before the
commit: an event is never stored without its link, and the head always names the latest link, so
dropping the latest events is caught too.

The database enforces append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)
on the events table and on ``pgf_chain``; the head accepts only an UPDATE that moves it forward.

Stores from before the chain (events, but no head and no links): the first open by this version
(any command, or the first write) links every stored event in log order, in one transaction,
marking those links ``backfilled``. A backfilled link proves the log has not changed *since the
upgrade*, not before it: ``pgf audit verify`` says how many links were backfilled. Once a store
has a chain, nothing is ever linked after the fact: an event slipped in without a link stays
unlinked and is reported; a missing head with links present refuses writes.

The PostgreSQL recorder lives in :mod:`pgf_events.audit.recorders_postgres`, so that a SQLite
store never imports psycopg (a third of a `pgf record` process's start-up).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from eventsourcing.persistence import (
    PersistenceError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder

from pgf_events.audit.chain import GENESIS, link_hash, link_material
from pgf_events.domain.errors import StoreError

CHAIN_TABLE = "pgf_chain"
HEAD_TABLE = "pgf_chain_head"
BATCH = 5000

# (position, originator id, version, topic, state) and (position, originator id, version, hash, backfilled)
# Stream ids travel as their 16 raw bytes (cheap to hash and compare; UUID(bytes=...) to show).
StoredRow = tuple[int, bytes, int, str, bytes]  # position, stream id, version, topic, state
LinkRow = tuple[int, bytes, int, bytes, bool]  # position, stream id, version, hash, backfilled
# What verification streams: (position, link material) and (position, hash, backfilled).
EventRow = tuple[int, bytes]
StoredLink = tuple[int, bytes, bool]


class Head(NamedTuple):
    position: int
    hash: bytes
    originator_id: UUID
    originator_version: int


_UNREADABLE = UUID("00000000-0000-0000-0000-00000000bad0")


def _uuid(value: Any) -> UUID:
    """A stream id as stored; a value that is no UUID at all (tampered) maps to one that links nothing."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        return uuid5(_UNREADABLE, repr(value))


def _oid(value: Any) -> bytes:
    """A stored stream id (UUID, or the 32 hex digits SQLite keeps) as 16 raw bytes."""
    if isinstance(value, str) and len(value) == 32:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return _uuid(value).bytes


def _bytes(value: Any) -> bytes:
    """Stored state as bytes, even if someone rewrote the column with text."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value) if value is not None else b""


class ChainWriter(ABC):
    """The chaining logic both backends share; subclasses supply the SQL."""

    # --- backend SQL (each backend's recorder implements these)
    @abstractmethod
    def _lock_writers(self, c: Any) -> None:
        """Take the lock that serialises writers, inside the transaction of ``c``."""

    @abstractmethod
    def _has_events(self, c: Any) -> bool: ...

    @abstractmethod
    def _read_head(self, c: Any) -> tuple[int, bytes] | None: ...

    @abstractmethod
    def _events_after(self, c: Any, after: int, before: int | None, limit: int) -> list[StoredRow]: ...

    @abstractmethod
    def _insert_links(self, c: Any, links: list[LinkRow]) -> None: ...

    @abstractmethod
    def _write_head(self, c: Any, link: LinkRow) -> None: ...

    @abstractmethod
    def _has_links(self, c: Any) -> bool: ...

    # --- shared
    def catch_up(self) -> bool:
        """Link a store from before the chain (no head, no links, some events). True if it did."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            if not self._needs_upgrade(c):
                return False
        with self.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            self._lock_writers(c)  # before reading again: another process may have just linked it
            if not self._needs_upgrade(c):
                return False
            self._upgrade(c)
            return True

    def _needs_upgrade(self, c: Any) -> bool:
        return self._read_head(c) is None and not self._has_links(c) and self._has_events(c)

    def _append_links(self, c: Any, ids: Sequence[int], stored_events: Sequence[StoredEvent]) -> None:
        """Link newly inserted events (same transaction, writers serialised by the caller's lock).

        Only the new events are linked: an event someone slipped in without a link stays unlinked,
        so ``pgf audit verify`` keeps reporting it. The one exception is a store that has no chain
        at all (from before this feature), which is linked from its first event.
        """
        new = sorted(zip(ids, stored_events, strict=True), key=lambda pair: pair[0])
        if not new:
            return
        head = self._read_head(c)
        if head is None:
            position, digest = self._upgrade(c, before=new[0][0])
        else:
            position, digest = head
            if new[0][0] <= position:
                raise StoreError(
                    f"the event log ends before its chain head (position {position}): events were removed "
                    "behind the engine's back; nothing was written. Run 'pgf audit verify'"
                )
        links: list[LinkRow] = []
        oids: dict[Any, bytes] = {}  # a save holds a few streams' events: convert each stream id once
        for notification_id, s in new:
            originator_id = oids.get(s.originator_id)
            if originator_id is None:
                originator_id = oids[s.originator_id] = _uuid(s.originator_id).bytes
            digest = link_hash(digest, originator_id, s.originator_version, s.topic, s.state)
            links.append((notification_id, originator_id, s.originator_version, digest, False))
        self._insert_links(c, links)
        self._write_head(c, links[-1])

    def _upgrade(self, c: Any, before: int | None = None) -> tuple[int, bytes]:
        """Link every stored event of a store that has no chain yet (one transaction, streamed).

        Refused when links exist without a head: the head was removed behind the engine's back,
        and rebuilding over it would hide that.
        """
        if self._has_links(c):
            raise StoreError(
                "the chain head is missing but chain links exist: it was removed behind the engine's back; "
                "nothing was written. Run 'pgf audit verify'"
            )
        position, digest = 0, GENESIS
        while True:
            rows = self._events_after(c, position, before, BATCH)
            if not rows:
                return position, digest
            links: list[LinkRow] = []
            for notification_id, originator_id, version, topic, state in rows:
                digest = link_hash(digest, originator_id, version, topic, state)
                links.append((notification_id, originator_id, version, digest, True))
            self._insert_links(c, links)
            position = links[-1][0]
            self._write_head(c, links[-1])


# ---------------------------------------------------------------------------------------- SQLite


class ChainedSQLiteRecorder(ChainWriter, SQLiteApplicationRecorder):
    """SQLite: ``stored_events`` + ``pgf_chain`` + ``pgf_chain_head``, guarded by triggers."""

    def construct_create_table_statements(self) -> list[str]:
        events = self.events_table_name
        statements = super().construct_create_table_statements()
        statements += [
            (f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
             "position INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
             "hash BLOB NOT NULL, backfilled INTEGER NOT NULL DEFAULT 0)"),
            (f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} ("
             "id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, hash BLOB NOT NULL, "
             "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL)"),
        ]
        for table in (events, CHAIN_TABLE):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS pgf_no_{op.lower()}_{table} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'pgf: {table} is append-only ({op} refused)'); END"
                )
        statements += [
            (f"CREATE TRIGGER IF NOT EXISTS pgf_no_delete_{HEAD_TABLE} BEFORE DELETE ON {HEAD_TABLE} "
             "BEGIN SELECT RAISE(ABORT, 'pgf: the chain head cannot be deleted'); END"),
            (f"CREATE TRIGGER IF NOT EXISTS pgf_forward_only_{HEAD_TABLE} BEFORE UPDATE ON {HEAD_TABLE} "
             "WHEN NEW.position <= OLD.position OR NEW.id != OLD.id "
             "BEGIN SELECT RAISE(ABORT, 'pgf: the chain head only moves forward'); END"),
        ]
        return statements

    def create_table(self) -> None:
        super().create_table()
        with suppress(PersistenceError):  # a read-only file: verify will report the unlinked events
            self.catch_up()

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        # The library inserts row by row to read each new rowid. Here the first INSERT takes the
        # write lock and gives the first rowid; the rest go in one executemany. Under the lock, with
        # rows never deleted (triggers), SQLite numbers them on from the largest rowid: checked below.
        params = [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                   s.originator_version, s.topic, s.state) for s in stored_events]
        c.execute(self.insert_events_statement, params[0])
        first = c.lastrowid
        if len(params) > 1:
            c.executemany(self.insert_events_statement, params[1:])
        c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
        ids = list(range(first, first + len(params)))
        if c.fetchone()[0] != ids[-1]:  # never seen; read the ids back rather than guess
            ids = [self._rowid_of(c, p[0], p[1]) for p in params]
        self._append_links(c, ids, stored_events)
        return ids

    def _rowid_of(self, c: Any, originator_id: str, version: int) -> int:
        c.execute(f"SELECT rowid FROM {self.events_table_name} WHERE originator_id = ? AND originator_version = ?",
                  (originator_id, version))
        return int(c.fetchone()[0])

    def _lock_writers(self, c: Any) -> None:
        c.execute(f"DELETE FROM {CHAIN_TABLE} WHERE 0")  # a write statement takes SQLite's write lock

    def _has_events(self, c: Any) -> bool:
        c.execute(f"SELECT 1 FROM {self.events_table_name} LIMIT 1")
        return c.fetchone() is not None

    def _has_links(self, c: Any) -> bool:
        c.execute(f"SELECT 1 FROM {CHAIN_TABLE} LIMIT 1")
        return c.fetchone() is not None

    def _read_head(self, c: Any) -> tuple[int, bytes] | None:
        c.execute(f"SELECT position, hash FROM {HEAD_TABLE} WHERE id = 1")
        row = c.fetchone()
        return (row[0], _bytes(row[1])) if row else None

    def _events_after(self, c: Any, after: int, before: int | None, limit: int) -> list[StoredRow]:
        statement = f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} WHERE rowid > ?"
        params: list[Any] = [after]
        if before is not None:
            statement += " AND rowid < ?"
            params.append(before)
        c.execute(statement + " ORDER BY rowid LIMIT ?", (*params, limit))
        return [(r[0], _oid(r[1]), r[2], r[3], _bytes(r[4])) for r in c.fetchall()]

    def _insert_links(self, c: Any, links: list[LinkRow]) -> None:
        hexes: dict[bytes, str] = {}
        c.executemany(
            f"INSERT INTO {CHAIN_TABLE} (position, originator_id, originator_version, hash, backfilled) "
            "VALUES (?, ?, ?, ?, ?)",
            [(p, hexes[o] if o in hexes else hexes.setdefault(o, o.hex()), v, h, int(b)) for p, o, v, h, b in links],
        )

    def _write_head(self, c: Any, link: LinkRow) -> None:
        c.execute(
            f"INSERT INTO {HEAD_TABLE} (id, position, hash, originator_id, originator_version) VALUES (1, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET position = excluded.position, hash = excluded.hash, "
            "originator_id = excluded.originator_id, originator_version = excluded.originator_version",
            (link[0], link[3], link[1].hex(), link[2]),
        )

    # --- reading, for verification (each call its own short read transaction)
    def chain_head(self) -> Head | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, hash, originator_id, originator_version FROM {HEAD_TABLE} WHERE id = 1")
            row = c.fetchone()
            return Head(row[0], _bytes(row[1]), _uuid(row[2]), row[3]) if row else None

    def max_position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
            events = c.fetchone()[0] or 0
            c.execute(f"SELECT MAX(position) FROM {CHAIN_TABLE}")
            return max(events, c.fetchone()[0] or 0)

    def event_rows(self, after: int, stop: int, limit: int) -> list[EventRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
                (after, stop, limit),
            )
            return [(r[0], link_material(_oid(r[1]), r[2], r[3], _bytes(r[4]))) for r in c.fetchall()]

    def link_rows(self, after: int, stop: int, limit: int) -> list[StoredLink]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT position, hash, backfilled FROM {CHAIN_TABLE} "
                "WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
                (after, stop, limit),
            )
            return [(r[0], _bytes(r[1]), bool(r[2])) for r in c.fetchall()]

    # --- the fast path of verification (pgf_events.audit.fastverify)
    chain_table = CHAIN_TABLE

    def file_path(self) -> str | None:
        """The database file, for a second process to read; None for an in-memory database."""
        pool = self.datastore.pool
        return None if pool.is_sqlite_memory_mode or pool.db_name.startswith("file:") else pool.db_name

    def check_segment(self, after: int, stop: int, marks: frozenset[int]) -> Any:
        from pgf_events.audit.fastverify import check_segment  # noqa: PLC0415

        with self.datastore.transaction(commit=False) as c:
            return check_segment(c.sqlite_cursor, self.events_table_name, CHAIN_TABLE, after, stop, marks)

    def link_count(self, stop: int) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {CHAIN_TABLE} WHERE position <= ?", (stop,))
            return int(c.fetchone()[0])

    # --- reading, for projection replays (pgf_events.projections.replay)
    def stream_heads(self, after: int, stop: int) -> list[tuple[UUID, int, int, int]]:
        """(stream id, last version, its position, event count) of each stream with events in (after, stop]."""
        with self.datastore.transaction(commit=False) as c:
            # The primary key index (originator_id, originator_version) holds the rowid too: index-only scan.
            c.execute(
                f"SELECT originator_id, MAX(originator_version), MAX(rowid), COUNT(*) FROM {self.events_table_name} "
                "WHERE rowid > ? AND rowid <= ? GROUP BY originator_id",
                (after, stop),
            )
            return [(_uuid(r[0]), r[1], r[2], r[3]) for r in c.fetchall()]

    def count_between(self, after: int, stop: int) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ?", (after, stop))
            return int(c.fetchone()[0])

    def stream_rows(self, streams: Sequence[tuple[UUID, int]]) -> list[list[tuple[int, str, bytes]]]:
        """Each stream's (version, topic, state) up to the given version, all read in one transaction."""
        statement = (f"SELECT originator_version, topic, state FROM {self.events_table_name} "
                     "WHERE originator_id = ? AND originator_version <= ? ORDER BY originator_version")
        with self.datastore.transaction(commit=False) as c:
            out = []
            for originator_id, version in streams:
                c.execute(statement, (originator_id.hex, version))
                out.append(c.fetchall())
            return out

    def link_identity(self, position: int) -> tuple[UUID, int] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id, originator_version FROM {CHAIN_TABLE} WHERE position = ?", (position,))
            row = c.fetchone()
            return (_uuid(row[0]), row[1]) if row else None
