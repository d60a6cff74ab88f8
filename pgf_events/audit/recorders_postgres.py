"""The chained application recorder for PostgreSQL (see :mod:`pgf_events.audit.recorders`).

Kept apart from the SQLite recorder so that only PostgreSQL stores import psycopg.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from pgf_events.audit.recorders import (
    CHAIN_TABLE,
    HEAD_TABLE,
    ChainWriter,
    EventRow,
    Head,
    LinkRow,
    StoredLink,
    StoredRow,
    _bytes,
    _oid,
    _uuid,
)
from pgf_events.domain.errors import StoreError


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

    def _lock_writers(self, c: Any) -> None:
        self._lock_table(c)  # the EXCLUSIVE lock on the head table (lock_table_statements)

    def _has_events(self, c: Any) -> bool:
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

    # --- reading, for projection replays (pgf_events.projections.replay)
    def stream_heads(self, after: int, stop: int) -> list[tuple[UUID, int, int, int]]:
        """(stream id, last version, its position, event count) of each stream with events in (after, stop]."""
        with self._binary_reader() as curs:
            curs.execute(SQL(
                "SELECT originator_id, MAX(originator_version), MAX(notification_id), COUNT(*) FROM {schema}.{events} "
                "WHERE notification_id > %s AND notification_id <= %s GROUP BY originator_id"
            ).format(**self.q), (after, stop))
            return curs.fetchall()  # type: ignore[no-any-return]

    def count_between(self, after: int, stop: int) -> int:
        with self._binary_reader() as curs:
            curs.execute(SQL(
                "SELECT COUNT(*) FROM {schema}.{events} WHERE notification_id > %s AND notification_id <= %s"
            ).format(**self.q), (after, stop))
            return int(curs.fetchone()[0])

    def stream_rows(self, streams: Sequence[tuple[UUID, int]]) -> list[list[tuple[int, str, bytes]]]:
        """Each stream's (version, topic, state) up to the given version, all read in one transaction."""
        statement = SQL(
            "SELECT originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = %s AND originator_version <= %s ORDER BY originator_version"
        ).format(**self.q)
        with self._binary_reader() as curs:
            out = []
            for originator_id, version in streams:
                curs.execute(statement, (originator_id, version))
                out.append(curs.fetchall())
            return out
