"""The chained application recorder for PostgreSQL (see :mod:`pgf_events.audit.recorders`).

Kept apart from the SQLite recorder so that only PostgreSQL stores import psycopg.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder, PostgresRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composed, Identifier

from pgf_events.audit.chain import CHAIN_TABLE, GENESIS, HEAD_TABLE, META_TABLE, NOTARY_SCHEME
from pgf_events.audit.dbroles import roles_ddl
from pgf_events.audit.pg_guard import GUARD_BODIES, PostgresTriggerGuard, _first_line
from pgf_events.audit.pg_notary import (
    TRIGGERS,
    TRIGGERS_KEY,
    init_new_store_sql,
    notary_ddl,
    triggers_version,
    upgrade_keys,
)
from pgf_events.audit.pg_notary_versions import triggers_ddl
from pgf_events.audit.pg_reading import PostgresReading
from pgf_events.audit.pg_sites import SITES_SETTING, sites_ddl
from pgf_events.audit.recorders import (
    ChainWriter,
    LinkRow,
    StoredRow,
    _bytes,
    _oid,
)
from pgf_events.domain.errors import AccessDenied, StoreError


@contextmanager
def _write_errors() -> Iterator[None]:
    """The database's refusals of a write, as the user's errors: the notary's and the site triggers'
    own messages ("pgf: ..."), and a login whose roles do not allow the write."""
    try:
        yield
    except (ProgrammingError, IntegrityError, PersistenceError) as e:
        text = str(e)
        if "pgf: " in text:
            raise StoreError(text.split("pgf: ", 1)[1].splitlines()[0]) from None
        if "permission denied" in text or "row-level security" in text:
            raise AccessDenied(f"the database refused the write ({_first_line(e)}): "
                               "your login's pgf roles do not allow it") from None
        raise


class ChainedPostgresRecorder(PostgresTriggerGuard, PostgresReading, ChainWriter, PostgresApplicationRecorder):
    """PostgreSQL: ``<app>_events`` + ``pgf_chain`` + ``pgf_chain_head`` + ``pgf_store`` in the store's schema.

    The database is the notary (:mod:`pgf_events.audit.pg_notary`): its triggers stamp, position and
    chain every inserted event, so this recorder only inserts the payload. Roles and grants:
    :mod:`pgf_events.audit.dbroles`. A store made by an older pgf (no ``pgf_store`` row naming the
    notary scheme) reads and verifies as before, and takes writes only after ``pgf db upgrade``; one
    whose notary links each row in its row trigger (triggers version 1) keeps it until that command.
    """

    new_store_triggers = TRIGGERS  # the notary's triggers a store created now gets (tests make version 1)

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.datastore.enable_db_functions = False  # the insert must go through the chaining path
        schema = Identifier(self.datastore.schema)
        events = Identifier(self.events_table_name)
        chain, head = Identifier(CHAIN_TABLE), Identifier(HEAD_TABLE)
        self.q = {"schema": schema, "events": events, "chain": chain, "head": head, "meta": Identifier(META_TABLE)}
        self.after_insert: list[tuple[Any, tuple[Any, ...]]] = []  # e.g. a GRANT, in the event's transaction
        self.created_now = False
        self.meta: dict[str, str] = {}
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
            *(SQL("CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS trigger LANGUAGE plpgsql AS $$" + body
                  + "$$").format(function=Identifier(function), **self.q) for function, body in GUARD_BODIES.items()),
        ]
        functions = self.sql_create_statements[-2:]  # the guards' functions (pgf_refuse_change, pgf_head_forward_only)
        self.sql_create_statements += [SQL(statement).format() for statement in  # type: ignore[arg-type]
                                       triggers_ddl(self.new_store_triggers)(self.datastore.schema,
                                                                             self.events_table_name)]
        # the append-only guards, with their functions (re-run by restore_triggers)
        self.guard_statements: list[Composed] = list(functions)  # type: ignore[arg-type]
        for table, function in ((events, "pgf_refuse_change"), (chain, "pgf_refuse_change"),
                                (head, "pgf_head_forward_only"), (Identifier(META_TABLE), "pgf_refuse_change")):
            self.guard_statements += [
                SQL(
                    "CREATE OR REPLACE TRIGGER pgf_append_only BEFORE UPDATE OR DELETE ON {schema}.{table} "
                    "FOR EACH ROW EXECUTE FUNCTION {schema}.{function}()"
                ).format(table=table, function=Identifier(function), **self.q),
                SQL(
                    "CREATE OR REPLACE TRIGGER pgf_no_truncate BEFORE TRUNCATE ON {schema}.{table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.pgf_refuse_change()"
                ).format(table=table, **self.q),
            ]
        self.sql_create_statements += self.guard_statements[2:]
        self.sql_create_statements += [SQL(statement).format() for statement in  # type: ignore[arg-type]
                                       roles_ddl(self.datastore.schema, self.events_table_name)]
        self.sql_create_statements += [SQL(statement) for statement in  # type: ignore[misc]  # literal braces
                                       sites_ddl(self.datastore.schema, self.events_table_name)]
        self.stream_sites: dict[str, str] = {}  # new patients' sites, claimed for an encrypted store (pg_sites)

    def create_table(self) -> None:
        """Create a new store (as its owner), or open an existing one without running any DDL."""
        if self._table_exists(self.events_table_name):
            self.datastore.register_type_adapters()
        else:
            try:
                super().create_table()
                with self.datastore.transaction(commit=True) as curs:
                    for statement, params in init_new_store_sql(self.datastore.schema, self.new_store_triggers):
                        curs.execute(statement, params)
            except PersistenceError as e:
                raise StoreError(f"cannot create the store's tables, roles and triggers: {_first_line(e)} "
                                 "(the login that creates a store must own its schema and may create roles)") from None
            self.created_now = True
        self.meta = self.read_meta()

    def grant_all(self, open_store: bool = True) -> None:
        """(Re)issue the store's privileges (the owner, after creating tables such as the read models)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SELECT {schema}.pgf_grants(%s)").format(**self.q), (open_store,))
            if self.meta.get("site_scope"):  # the read models: unscoped logins only (pg_sites)
                curs.execute(SQL("SELECT {schema}.pgf_scope_read_models()").format(**self.q))

    def read_meta(self) -> dict[str, str]:
        if not self._table_exists(META_TABLE):
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT key, value FROM {schema}.{meta}").format(**self.q))
            return {row["key"]: row["value"] for row in curs.fetchall()}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        self._require_notary()
        with _write_errors(), self.datastore.transaction(commit=True) as curs:
            missing = self._lock_reading_triggers(curs, "pg_advisory_xact_lock_shared")  # see bulk()
            self._notify_channel(curs)
            if self.stream_sites:
                curs.execute("SELECT set_config(%s, %s, true)", (SITES_SETTING, json.dumps(self.stream_sites)))
            PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events)
            ids = [row["notification_id"] for row in curs.fetchall()]
            self._refuse_without(missing)
            for statement, params in self.after_insert:
                curs.execute(statement, params)
        return ids

    @contextmanager
    def bulk(self) -> Iterator[Callable[[Sequence[StoredEvent]], None] | None]:
        """One write transaction for a bulk import (see the SQLite recorder's), the writers' lock taken
        first: an exclusive advisory lock of the store that every save takes shared, so single writers
        wait for the import instead of changing a patient it has read (and making it start again).
        Each chunk's move is one insert statement: the notary stamps its rows and links them at once."""
        self._require_notary()
        with _write_errors(), self.datastore.transaction(commit=True) as curs:
            self._refuse_without(self._lock_reading_triggers(curs, "pg_advisory_xact_lock"))  # before any work
            # The triggers' per-row lookups by index whatever the statistics say (else quadratic): the
            # functions of stores made before do not carry the setting themselves (pg_notary).
            curs.execute("SET LOCAL enable_seqscan = off")
            # That setting priced a scan of the temporary table the moves once read at 1e10, far above every
            # JIT threshold: each chunk's INSERT ... SELECT was compiled by LLVM (~40 ms a chunk, 40% of the
            # server's time in an import). The statements here are simple; nothing is worth compiling.
            curs.execute("SET LOCAL jit = off")
            self._notify_channel(curs)

            # Each chunk is one INSERT ... SELECT of its rows, sent as four binary arrays, in order: the
            # notary's triggers and the row-level security policy see every row, as for any insert.
            move = SQL("INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
                       "SELECT o, v, t, s FROM unnest(%b::uuid[], %b::int8[], %b::text[], %b::bytea[]) "
                       "WITH ORDINALITY AS u(o, v, t, s, n) ORDER BY n").format(**self.q)
            sites = SQL("SELECT set_config(%s, %s, true)")
            mover = _Mover(curs.connection)

            def insert(stored_events: Sequence[StoredEvent]) -> None:
                # new patients' sites, for an encrypted store (pg_sites), claimed before the chunk's move
                claims = json.dumps(self.stream_sites) if self.stream_sites else None
                rows = ([s.originator_id for s in stored_events], [s.originator_version for s in stored_events],
                        [s.topic for s in stored_events], [s.state for s in stored_events])
                mover.submit([*([(sites, (SITES_SETTING, claims))] if claims else []), (move, rows)])

            try:
                yield insert
                mover.wait()
            finally:
                mover.close()

    def _require_notary(self) -> None:
        if not self.notarised:
            raise StoreError("this store was made by an older pgf and is not notarised by the database; "
                             "nothing was written. Its owner must run 'pgf db upgrade' (explicit and logged)")

    @property
    def writers_key(self) -> int:
        """The store's advisory lock key: a signed 64-bit number from its schema's name."""
        digest = hashlib.sha256(f"pgf-writers:{self.datastore.schema}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    chain_scheme = NOTARY_SCHEME

    def upgrade(self, by: str, now: str) -> int | None:
        """``pgf db upgrade`` by the schema owner: add the notary (columns, trigger, roles, marker) to a
        store made by an older pgf, linking its events first if it has no chain. Logged in ``pgf_store``."""
        if self.notarised:
            return None
        try:
            PostgresRecorder.create_table(self)  # every statement is idempotent
            with self.datastore.transaction(commit=True) as c:
                self._lock_writers(c)
                linked = 0
                if self._read_head(c) is None:
                    if self._has_links(c):
                        raise StoreError("the chain head is missing but chain links exist: that is tampering, "
                                         "not an old store; nothing was changed. Run 'pgf audit verify'")
                    linked, _ = self._upgrade(c)
                    if not linked:
                        c.execute(init_new_store_sql(self.datastore.schema)[0][0], (GENESIS,))
                head = self._read_head(c)
                assert head is not None
                self._write_meta(c, [("chain", NOTARY_SCHEME), ("notary_from", str(head[0] + 1)),
                                     ("upgraded_at", now), ("upgraded_by", by), ("backfilled_to", str(linked))]
                                 + ([(TRIGGERS_KEY, self.new_store_triggers)] if self.new_store_triggers != "1" else []))
        except PersistenceError as e:
            raise StoreError(f"cannot upgrade the store: {_first_line(e)} (run it as the schema's owner)") from None
        self.meta = self.read_meta()
        return linked

    def upgrade_notary(self, by: str, now: str) -> bool:
        """``pgf db upgrade`` (the schema owner): a notary of triggers version 1 or 2 becomes the current
        one (:mod:`pgf_events.audit.pg_notary`), writers locked out, logged; False if it is already."""
        if not self.notarised or triggers_version(self.meta) == TRIGGERS:
            return False
        try:
            with self.datastore.transaction(commit=True) as c:
                self._lock_writers(c)
                c.execute(SQL("SELECT key, value FROM {schema}.{meta}").format(**self.q))
                meta = {row["key"]: row["value"] for row in c.fetchall()}
                if triggers_version(meta) == TRIGGERS:  # upgraded meanwhile
                    return False
                for statement in notary_ddl(self.datastore.schema, self.events_table_name):
                    c.execute(statement)
                key = upgrade_keys(meta)
                self._write_meta(c, [(key, TRIGGERS), (f"{key}_at", now), (f"{key}_by", by)])
        except PersistenceError as e:
            raise StoreError(f"cannot upgrade the store: {_first_line(e)} (run it as the schema's owner)") from None
        finally:
            self.meta = self.read_meta()
        return True

    def _write_meta(self, c: Any, rows: list[tuple[str, str]]) -> None:
        c.executemany(SQL("INSERT INTO {schema}.{meta} (key, value) VALUES (%s, %s)").format(**self.q), rows)

    def _meta_value(self, c: Any, key: str) -> str | None:
        c.execute(SQL("SELECT value FROM {schema}.{meta} WHERE key = %s").format(**self.q), (key,))
        row = c.fetchone()
        return str(row["value"]) if row else None

    def _lock_writers(self, c: Any) -> None:
        self._lock_table(c)  # the library's EXCLUSIVE lock on the events table (the owner's upgrade)

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

    def _write_head(self, c: Any, link: LinkRow, times: tuple[datetime, datetime] | None = None) -> None:
        c.execute(
            SQL(
                "INSERT INTO {schema}.{head} (id, position, hash, originator_id, originator_version) "
                "VALUES (1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, "
                "hash = EXCLUDED.hash, originator_id = EXCLUDED.originator_id, "
                "originator_version = EXCLUDED.originator_version"
            ).format(**self.q),
            (link[0], link[3], UUID(bytes=link[1]), link[2]),
        )


class _Mover:
    """Runs a bulk import's chunk statements on a thread of its own, in order, on the import's
    connection and transaction: the database inserts, stamps and chains a chunk's rows (the notary's
    triggers) while the importing thread checks and encodes the lines after them. ``submit`` hands
    over a chunk's statements and returns at once unless ``depth`` chunks are already waiting or
    running (memory stays bounded); a failure stops the moving and is raised at the next ``submit``
    or ``wait``, and the transaction is then rolled back. ``close`` drops what has not started."""

    def __init__(self, connection: Any, depth: int = 2):
        self._connection = connection
        self._jobs: queue.Queue[list[tuple[Any, Any]] | None] = queue.Queue()
        self._slots = threading.Semaphore(depth)
        self._idle = threading.Condition()
        self._pending = 0
        self._closing = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pgf-bulk-mover", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._connection.cursor() as cursor:
            while (job := self._jobs.get()) is not None:
                try:
                    if self._failure is None and not self._closing:
                        for statement, params in job:
                            cursor.execute(statement, params)
                except BaseException as e:  # noqa: BLE001 - raised in the importing thread
                    self._failure = e
                finally:
                    self._slots.release()
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()

    def submit(self, job: list[tuple[Any, Any]]) -> None:
        self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        with self._idle:
            self._pending += 1
        self._jobs.put(job)

    def wait(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        self._closing = True  # what has not started is dropped: the transaction is ending
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        self._jobs.put(None)
        self._thread.join()
