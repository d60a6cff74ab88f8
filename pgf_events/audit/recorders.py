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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

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


class ChainWriter:
    """The chaining logic both backends share; subclasses supply the SQL."""

    # --- backend SQL (implemented per backend)
    def _read_head(self, c: Any) -> tuple[int, bytes] | None:
        raise NotImplementedError

    def _events_after(self, c: Any, after: int, before: int | None, limit: int) -> list[StoredRow]:
        raise NotImplementedError

    def _insert_links(self, c: Any, links: list[LinkRow]) -> None:
        raise NotImplementedError

    def _write_head(self, c: Any, link: LinkRow) -> None:
        raise NotImplementedError

    def _has_links(self, c: Any) -> bool:
        raise NotImplementedError

    # --- shared
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
        for notification_id, s in new:
            originator_id = _uuid(s.originator_id).bytes
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
        ids = super()._insert_events(c, stored_events, **kwargs)  # the INSERT took the write lock
        assert ids is not None
        self._append_links(c, ids, stored_events)
        return ids

    def catch_up(self) -> bool:
        """Link a store from before the chain (no head, no links, some events). True if it did."""
        with self.datastore.transaction(commit=False) as c:
            if not self._needs_upgrade(c):
                return False
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {CHAIN_TABLE} WHERE 0")  # take the write lock before reading
            if not self._needs_upgrade(c):
                return False
            self._upgrade(c)
            return True

    def _needs_upgrade(self, c: Any) -> bool:
        if self._read_head(c) is not None or self._has_links(c):
            return False
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
        c.executemany(
            f"INSERT INTO {CHAIN_TABLE} (position, originator_id, originator_version, hash, backfilled) "
            "VALUES (?, ?, ?, ?, ?)",
            [(p, o.hex(), v, h, int(b)) for p, o, v, h, b in links],
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

    def link_identity(self, position: int) -> tuple[UUID, int] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id, originator_version FROM {CHAIN_TABLE} WHERE position = ?", (position,))
            row = c.fetchone()
            return (_uuid(row[0]), row[1]) if row else None


# ------------------------------------------------------------------------------------ PostgreSQL


class ChainedPostgresRecorder(ChainWriter, PostgresApplicationRecorder):
    """PostgreSQL: ``<app>_events`` + ``pgf_chain`` + ``pgf_chain_head`` in the store's schema.

    Writers serialise on an EXCLUSIVE lock of the head table (not of the events table, which
    needs UPDATE privilege to lock that way), so a writer role needs only INSERT/SELECT on the
    events and the chain, and UPDATE on the head (which its trigger lets move only forward).
    """

    TRIGGERS = 6

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.datastore.enable_db_functions = False  # the insert must go through the chaining path
        schema = Identifier(self.datastore.schema)
        events = Identifier(self.events_table_name)
        chain, head = Identifier(CHAIN_TABLE), Identifier(HEAD_TABLE)
        self.q = {"schema": schema, "events": events, "chain": chain, "head": head}
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("LOCK TABLE {schema}.{head} IN EXCLUSIVE MODE").format(**self.q),
        ]
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} (position bigint PRIMARY KEY, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, hash bytea NOT NULL, "
                "backfilled boolean NOT NULL DEFAULT false)"
            ).format(**self.q),
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{head} (id smallint PRIMARY KEY CHECK (id = 1), "
                "position bigint NOT NULL, hash bytea NOT NULL, originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL)"
            ).format(**self.q),
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.pgf_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'pgf: % on %.% refused: the event store is append-only', "
                "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(**self.q),
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.pgf_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.position > OLD.position THEN RETURN NEW; "
                "END IF; RAISE EXCEPTION 'pgf: % on the chain head refused: it only moves forward', TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(**self.q),
        ]
        for table, function in ((events, "pgf_refuse_change"), (chain, "pgf_refuse_change"),
                                (head, "pgf_head_forward_only")):
            self.sql_create_statements += [
                SQL(
                    "CREATE OR REPLACE TRIGGER pgf_append_only BEFORE UPDATE OR DELETE ON {schema}.{table} "
                    "FOR EACH ROW EXECUTE FUNCTION {schema}.{function}()"
                ).format(table=table, function=Identifier(function), **self.q),
                SQL(
                    "CREATE OR REPLACE TRIGGER pgf_no_truncate BEFORE TRUNCATE ON {schema}.{table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.pgf_refuse_change()"
                ).format(table=table, **self.q),
            ]

    def create_table(self) -> None:
        if self._schema_complete():
            # Everything exists: run no DDL, so roles without ownership (pgf db grants) can open it.
            self.datastore.register_type_adapters()
        else:
            super().create_table()
        with suppress(PersistenceError):  # a read-only role: verify will report the unlinked events
            self.catch_up()

    def _schema_complete(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT count(*) AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
                "WHERE ns.nspname = %s AND c.relname IN (%s, %s, %s) AND t.tgname IN ('pgf_append_only', 'pgf_no_truncate')",
                (self.datastore.schema, self.events_table_name, CHAIN_TABLE, HEAD_TABLE),
            )
            row = curs.fetchone()
            return bool(row and row["n"] == self.TRIGGERS)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        try:
            with self.datastore.transaction(commit=True) as curs:
                self._lock_table(curs)
                self._notify_channel(curs)
                PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events)
                ids = [row["notification_id"] for row in curs.fetchall()]
                self._append_links(curs, ids, stored_events)
        except ProgrammingError as e:
            if "permission denied" not in str(e):
                raise
            raise StoreError(f"the database refused the write ({e}); this role may only read") from None
        return ids

    def catch_up(self) -> bool:
        """Link a store from before the chain (no head, no links, some events). True if it did."""
        with self.datastore.transaction(commit=False) as curs:
            if not self._needs_upgrade(curs):
                return False
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            if not self._needs_upgrade(curs):
                return False
            self._upgrade(curs)
            return True

    def _needs_upgrade(self, c: Any) -> bool:
        if self._read_head(c) is not None or self._has_links(c):
            return False
        c.execute(SQL("SELECT 1 AS one FROM {schema}.{events} LIMIT 1").format(**self.q))
        return c.fetchone() is not None

    def _has_links(self, c: Any) -> bool:
        c.execute(SQL("SELECT 1 AS one FROM {schema}.{chain} LIMIT 1").format(**self.q))
        return c.fetchone() is not None

    def _read_head(self, c: Any) -> tuple[int, bytes] | None:
        c.execute(SQL("SELECT position, hash FROM {schema}.{head} WHERE id = 1").format(**self.q))
        row = c.fetchone()
        return (row["position"], _bytes(row["hash"])) if row else None

    def _events_after(self, c: Any, after: int, before: int | None, limit: int) -> list[StoredRow]:
        statement: Composed = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE notification_id > %s"
        ).format(**self.q)
        params: list[Any] = [after]
        if before is not None:
            statement += SQL(" AND notification_id < %s")
            params.append(before)
        c.execute(statement + SQL(" ORDER BY notification_id LIMIT %s"), (*params, limit))
        return [
            (r["notification_id"], _oid(r["originator_id"]), r["originator_version"], r["topic"], _bytes(r["state"]))
            for r in c.fetchall()
        ]

    def _insert_links(self, c: Any, links: list[LinkRow]) -> None:
        c.executemany(
            SQL(
                "INSERT INTO {schema}.{chain} (position, originator_id, originator_version, hash, backfilled) "
                "VALUES (%s, %s, %s, %s, %s)"
            ).format(**self.q),
            [(p, UUID(bytes=o), v, h, b) for p, o, v, h, b in links],
        )

    def _write_head(self, c: Any, link: LinkRow) -> None:
        c.execute(
            SQL(
                "INSERT INTO {schema}.{head} (id, position, hash, originator_id, originator_version) "
                "VALUES (1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, "
                "hash = EXCLUDED.hash, originator_id = EXCLUDED.originator_id, "
                "originator_version = EXCLUDED.originator_version"
            ).format(**self.q),
            (link[0], link[3], UUID(bytes=link[1]), link[2]),
        )

    # --- reading, for verification
    def chain_head(self) -> Head | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL(
                "SELECT position, hash, originator_id, originator_version FROM {schema}.{head} WHERE id = 1"
            ).format(**self.q))
            row = curs.fetchone()
            return Head(row["position"], _bytes(row["hash"]), _uuid(row["originator_id"]),
                        row["originator_version"]) if row else None

    def max_position(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL(
                "SELECT GREATEST((SELECT MAX(notification_id) FROM {schema}.{events}), "
                "(SELECT MAX(position) FROM {schema}.{chain})) AS m"
            ).format(**self.q))
            return curs.fetchone()["m"] or 0  # type: ignore[index]

    @contextmanager
    def _binary_reader(self) -> Iterator[Any]:
        """A read-only cursor in binary format with plain tuples: no text decoding of bytea or uuid."""
        with (self.datastore.get_connection() as conn, conn.transaction(force_rollback=True),
              conn.cursor(binary=True, row_factory=tuple_row) as curs):
            yield curs

    def event_rows(self, after: int, stop: int, limit: int) -> list[EventRow]:
        # The server lays out each event's link material (see chain.link_material): two cells a row.
        with self._binary_reader() as curs:
            curs.execute(SQL(
                "SELECT notification_id, uuid_send(originator_id) || int8send(originator_version) "
                "|| int4send(octet_length(convert_to(coalesce(topic, ''), 'UTF8'))) "
                "|| convert_to(coalesce(topic, ''), 'UTF8') "
                "|| int8send(octet_length(coalesce(state, ''::bytea))::bigint) || coalesce(state, ''::bytea) "
                "FROM {schema}.{events} WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(**self.q), (after, stop, limit))
            return curs.fetchall()  # type: ignore[no-any-return]

    def link_rows(self, after: int, stop: int, limit: int) -> list[StoredLink]:
        with self._binary_reader() as curs:
            curs.execute(SQL(
                "SELECT position, hash, backfilled FROM {schema}.{chain} "
                "WHERE position > %s AND position <= %s ORDER BY position LIMIT %s"
            ).format(**self.q), (after, stop, limit))
            return curs.fetchall()  # type: ignore[no-any-return]

    def link_identity(self, position: int) -> tuple[UUID, int] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL(
                "SELECT originator_id, originator_version FROM {schema}.{chain} WHERE position = %s"
            ).format(**self.q), (position,))
            row = curs.fetchone()
            return (_uuid(row["originator_id"]), row["originator_version"]) if row else None
