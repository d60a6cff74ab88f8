"""Reading a PostgreSQL store: events with the database's stamps, and the chain for verification.

The stamps (``recorded_by``, ``recorded_at``) ride along on every stored event this recorder
returns, and :class:`pgf_events.mapper.FastMapper` puts them in place of the client-written
values: history, reports, exports and replays all show what the database notarised. A store whose
chain tables were dropped reads as having no chain (verify says so; nothing rebuilds it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed

from pgf_events.audit.chain import CHAIN_TABLE, HEAD_TABLE, NOTARY_SCHEME
from pgf_events.audit.pg_notary import link_material_sql
from pgf_events.audit.recorders import EventRow, Head, StoredLink, _bytes, _uuid


@dataclass(frozen=True)
class StampedEvent(StoredEvent):
    """A stored event with the database's stamps (None for events from before the notary)."""

    recorded_by: str | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class StampedNotification(Notification):
    recorded_by: str | None = None
    recorded_at: datetime | None = None


class PostgresReading:
    """Mixed into :class:`pgf_events.audit.recorders_postgres.ChainedPostgresRecorder`."""

    datastore: Any
    q: dict[str, Any]
    meta: dict[str, str]

    def _table_exists(self, name: str) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT to_regclass(%s) IS NOT NULL AS yes", (f'"{self.datastore.schema}"."{name}"',))
            return bool(curs.fetchone()["yes"])

    def _chained_tables(self) -> bool:
        return self._table_exists(CHAIN_TABLE) and self._table_exists(HEAD_TABLE)

    @property
    def notarised(self) -> bool:
        return self.meta.get("chain") == NOTARY_SCHEME

    def notary_from(self) -> int:
        """The first position whose link the database computed over its own stamps (0: none)."""
        return int(self.meta.get("notary_from", "0")) if self.notarised else 0

    # --- reading with the database's stamps
    def select_events(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        statement: Composed = SQL(
            "SELECT originator_id, originator_version, topic, state, {stamps} FROM {schema}.{events} "
            "WHERE originator_id = %s"
        ).format(stamps=self._stamps(), **self.q)
        params: list[Any] = [originator_id]
        if gt is not None:
            statement += SQL(" AND originator_version > %s")
            params.append(gt)
        if lte is not None:
            statement += SQL(" AND originator_version <= %s")
            params.append(lte)
        statement += SQL(" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC")
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [StampedEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]),
                                 r["recorded_by"], r["recorded_at"]) for r in curs.fetchall()]

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True) -> Sequence[Notification]:
        statement: Composed = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state, {stamps} "
            "FROM {schema}.{events} WHERE true"
        ).format(stamps=self._stamps(), **self.q)
        params: list[Any] = []
        if start is not None:
            statement += SQL(" AND notification_id >= %s" if inclusive_of_start else " AND notification_id > %s")
            params.append(start)
        if stop is not None:
            statement += SQL(" AND notification_id <= %s")
            params.append(stop)
        if topics:
            statement += SQL(" AND topic = ANY(%s)")
            params.append(list(topics))
        statement += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [StampedNotification(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]),
                                        r["notification_id"], r["recorded_by"], r["recorded_at"])
                    for r in curs.fetchall()]

    def _stamps(self) -> SQL:
        if self.notarised:
            return SQL("recorded_by, recorded_at")
        return SQL("NULL::text AS recorded_by, NULL::timestamptz AS recorded_at")

    # --- reading, for verification
    def chain_head(self) -> Head | None:
        if not self._chained_tables():
            return None
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL(
                "SELECT position, hash, originator_id, originator_version FROM {schema}.{head} WHERE id = 1"
            ).format(**self.q))
            row = curs.fetchone()
            return Head(row["position"], _bytes(row["hash"]), _uuid(row["originator_id"]),
                        row["originator_version"]) if row else None

    def max_position(self) -> int:
        if not self._chained_tables():
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(SQL("SELECT MAX(notification_id) AS m FROM {schema}.{events}").format(**self.q))
                return curs.fetchone()["m"] or 0  # type: ignore[index]
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
        # The server lays out each event's link material (see chain.link_material and, from the
        # store's notary_from position on, the database's stamps: pg_notary): two cells a row.
        notary_from = self.notary_from()
        material = link_material_sql("", "%s") if notary_from else link_material_sql("", "%s").split(" || CASE")[0]
        params: tuple[Any, ...] = (notary_from,) if notary_from else ()
        with self._binary_reader() as curs:
            curs.execute(SQL(
                "SELECT notification_id, " + material + " "  # type: ignore[arg-type]
                "FROM {schema}.{events} WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(**self.q), (*params, after, stop, limit))
            return curs.fetchall()  # type: ignore[no-any-return]

    def link_rows(self, after: int, stop: int, limit: int) -> list[StoredLink]:
        if not self._chained_tables():
            return []
        with self._binary_reader() as curs:
            curs.execute(SQL(
                "SELECT position, hash, backfilled FROM {schema}.{chain} "
                "WHERE position > %s AND position <= %s ORDER BY position LIMIT %s"
            ).format(**self.q), (after, stop, limit))
            return curs.fetchall()  # type: ignore[no-any-return]

    def link_identity(self, position: int) -> tuple[UUID, int] | None:
        if not self._chained_tables():
            return None
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

    def stream_rows(self, streams: Sequence[tuple[UUID, int]]) -> list[list[tuple[Any, ...]]]:
        """Each stream's (version, topic, state, recorded_by, recorded_at) up to the given version, in one transaction."""
        statement = SQL(
            "SELECT originator_version, topic, state, {stamps} FROM {schema}.{events} "
            "WHERE originator_id = %s AND originator_version <= %s ORDER BY originator_version"
        ).format(stamps=self._stamps(), **self.q)
        with self.datastore.transaction(commit=False) as curs:
            out = []
            for originator_id, version in streams:
                curs.execute(statement, (originator_id, version))
                out.append([(r["originator_version"], r["topic"], bytes(r["state"]), r["recorded_by"], r["recorded_at"])
                            for r in curs.fetchall()])
            return out
