"""Raw database access for tests that play an attacker with database credentials."""

from __future__ import annotations

import sqlite3
from typing import Any

from pgf_events.audit.chain import CHAIN_TABLE, HEAD_TABLE, META_TABLE
from pgf_events.store import parse_url
from tests.pgcluster import OWNER, Cluster


class Attacker:
    """Runs SQL straight against a store's tables, behind the engine's back.

    On PostgreSQL it connects as ``login``: by default the schema owner (who alone can drop the
    triggers); pass an ordinary person's login to play an insider with only that login's roles.
    """

    def __init__(self, url: str, login: str = OWNER):
        self.login = login
        self.config = parse_url(Cluster.login_url(url, login) if url.startswith("postgres") else url)
        self.sqlite = self.config.backend == "sqlite"
        if self.sqlite:
            assert self.config.sqlite_path is not None
            self.conn: Any = sqlite3.connect(self.config.sqlite_path, isolation_level=None)
            self.events, self.chain, self.head, self.pos = "stored_events", CHAIN_TABLE, HEAD_TABLE, "rowid"
            self.meta = META_TABLE
        else:
            import psycopg

            env = self.config.env
            self.conn = psycopg.connect(
                dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
            )
            schema = f'"{self.config.schema}"'
            self.events, self.chain, self.head = f"{schema}.pgf_events", f"{schema}.{CHAIN_TABLE}", f"{schema}.{HEAD_TABLE}"
            self.meta = f"{schema}.{META_TABLE}"
            self.pos = "notification_id"

    def close(self) -> None:
        self.conn.close()

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; ``?`` placeholders work on both backends."""
        if not self.sqlite:
            statement = statement.replace("?", "%s")
        cursor = self.conn.execute(statement, params)
        try:
            return [tuple(r) for r in cursor.fetchall()]
        except Exception:  # noqa: BLE001 - statements without rows
            return []

    def link_materials(self) -> list[tuple[int, bytes]]:
        """(position, link material) of every event, as the engine's verifier reads them."""
        from pgf_events.application import TrialConduct

        app = TrialConduct(self.config)
        try:
            return [(p, bytes(m)) for p, m in app.recorder.event_rows(0, 10**12, 10**6)]
        finally:
            app.close()

    def restore_triggers(self) -> None:
        """Put every trigger back, as an attacker covering their tracks would (the owner on PostgreSQL)."""
        from eventsourcing.postgres import PostgresRecorder

        from pgf_events.application import TrialConduct

        app = TrialConduct(self.config)  # (opening a store re-creates no trigger)
        try:
            if self.sqlite:  # the recorder's own statements, run straight on the file
                for statement in app.recorder.trigger_statements().values():
                    self.sql(statement)
            else:
                PostgresRecorder.create_table(app.recorder)
        finally:
            app.close()

    def drop_triggers(self, notary: bool = True) -> None:
        if self.sqlite:
            names = [r[0] for r in self.sql("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'pgf_%'")]
            for name in names:
                self.sql(f"DROP TRIGGER {name}")
        else:
            for table in (self.events, self.chain, self.head, self.meta):
                self.sql(f"DROP TRIGGER pgf_append_only ON {table}")
                self.sql(f"DROP TRIGGER pgf_no_truncate ON {table}")
            if notary:  # the database's notary too (a store made before the statement-level one has no links trigger)
                self.sql(f"DROP TRIGGER pgf_notarise ON {self.events}")
                self.sql(f"DROP TRIGGER IF EXISTS pgf_notarise_links ON {self.events}")

    def position_of(self, subject_version: tuple[str, int]) -> int:
        from pgf_events.domain.patient import patient_id

        subject, version = subject_version
        oid = patient_id(subject)
        rows = self.sql(
            f"SELECT {self.pos} FROM {self.events} WHERE originator_id = ? AND originator_version = ?",
            (oid.hex if self.sqlite else oid, version),
        )
        return int(rows[0][0])

    def state(self, position: int) -> bytes:
        return bytes(self.sql(f"SELECT state FROM {self.events} WHERE {self.pos} = ?", (position,))[0][0])

    def set_state(self, position: int, state: bytes) -> None:
        self.sql(f"UPDATE {self.events} SET state = ? WHERE {self.pos} = ?", (state, position))

    def delete_event(self, position: int) -> None:
        self.sql(f"DELETE FROM {self.events} WHERE {self.pos} = ?", (position,))

    def delete_link(self, position: int) -> None:
        self.sql(f"DELETE FROM {self.chain} WHERE position = ?", (position,))

    def last_position(self) -> int:
        return int(self.sql(f"SELECT MAX({self.pos}) FROM {self.events}")[0][0])

    def insert_copy(self, position: int, new_version: int) -> None:
        """A forged event: a copy of another one's row under a new version number."""
        self.sql(
            f"INSERT INTO {self.events} (originator_id, originator_version, topic, state) "
            f"SELECT originator_id, ?, topic, state FROM {self.events} WHERE {self.pos} = ?",
            (new_version, position),
        )

    def rechain(self) -> None:
        """Recompute every link and the head over the events as they now are (triggers dropped first):
        the chain alone then verifies a rewritten log. On PostgreSQL the links also cover the
        database's stamps, read here with the store's own material SQL."""
        import hashlib
        from uuid import UUID

        from pgf_events.audit.chain import GENESIS, link_material
        from pgf_events.audit.pg_notary import link_material_sql

        if self.sqlite:
            rows = [(p, link_material(UUID(o), v, t, bytes(raw))) for p, o, v, t, raw in self.sql(
                f"SELECT {self.pos}, originator_id, originator_version, topic, state FROM {self.events} ORDER BY 1")]
        else:
            meta = dict(self.sql(f"SELECT key, value FROM {self.meta}"))
            material = link_material_sql("", meta.get("notary_from", "0"))
            rows = [(p, bytes(m)) for p, m in self.sql(f"SELECT notification_id, {material} FROM {self.events} ORDER BY 1")]
        self.sql(f"DELETE FROM {self.chain}")
        h = GENESIS
        for position, material_bytes in rows:
            h = hashlib.sha256(h + material_bytes).digest()
            oid, version = UUID(bytes=material_bytes[:16]), int.from_bytes(material_bytes[16:24], "big", signed=True)
            self.sql(f"INSERT INTO {self.chain} (position, originator_id, originator_version, hash, backfilled) "
                     "VALUES (?, ?, ?, ?, ?)", (position, oid.hex if self.sqlite else oid, version, h, False))
        self.sql(f"UPDATE {self.head} SET hash = ?", (h,))
