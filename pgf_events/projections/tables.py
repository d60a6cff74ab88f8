"""The read models' tables, how their rows are sealed in an encrypted store, and the SQLAlchemy
engine on the events' database (:mod:`.store` keeps them caught up).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from pgf_events.projections.slices import PROJECTIONS, _ref_key, collect_refs
from pgf_events.store import StoreConfig

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

metadata = sa.MetaData()
tracking = sa.Table(
    "pgf_projection_tracking", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("protocol_version", sa.String(200), nullable=False),
)
changes = sa.Table(
    "pgf_changes", metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("projection", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("event_ref", sa.Text, nullable=False),  # sealed (ciphertext) in an encrypted store
    sa.Column("recorded_at", sa.String(40), nullable=False),  # ISO 8601 UTC, ...Z
)
views: dict[str, sa.Table] = {
    name: sa.Table(
        f"pgf_view_{name}", metadata,
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("protocol_version", sa.String(200), nullable=False),
        sa.Column("refs", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    for name in PROJECTIONS
}


def model_table(name: str) -> sa.Table:
    """The table of the stream model ``name`` (:mod:`.stream_models`): per (subject, kind) the row's
    ``data``, the stream ``version`` it reflects and that version's notification id (``position``).

    Not a report, not in the feed. Each in its own metadata: made with a new store
    (provision.finish_store) or by the first reader allowed to create it, so that an older store's
    least-privilege logins still open their read models."""
    table = _MODEL_TABLES.get(name)
    if table is None:
        table = _MODEL_TABLES[name] = sa.Table(
            f"pgf_view_{name}", sa.MetaData(),
            sa.Column("subject", sa.String(64), primary_key=True),
            sa.Column("kind", sa.String(16), primary_key=True),
            sa.Column("data", sa.JSON, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("position", sa.BigInteger, nullable=False),
        )
    return table


_MODEL_TABLES: dict[str, sa.Table] = {}
# The worklist's read model (:mod:`.worklist_model`): per subject, ``kind`` "patient" (the
# patient's worklist inputs) and "queries" (its open data queries).
worklist_rows = model_table("worklist")
worklist_metadata = worklist_rows.metadata
# The audit page's read model (pgf_events.audit.findings): per subject, ``kind`` "patient" (its
# exception rows, first entries per user and site, and deviation rows).
audit_metadata = model_table("audit").metadata
# The audit trail's read model (pgf_events.audit.trail_index): per subject, ``kind`` "patient" and
# "review" (each event's recorded time, user, kind and number of trail rows).
trail_metadata = model_table("trail").metadata

_MEMORY_ENGINES: weakref.WeakKeyDictionary[TrialConduct, Engine] = weakref.WeakKeyDictionary()


class Codec:
    """How rows are kept: plain JSON, or, in an encrypted store, sealed with the store's own cipher.

    Sealed rows hold no subject code, value or free text: the subject key is a keyed HMAC of the
    code (lookups still work), and data, refs and event references are AES-GCM ciphertext.
    """

    def __init__(self, app: TrialConduct):
        self.cipher = app.mapper.cipher if app.store.cipher_key else None
        self.secret = hashlib.sha256(b"pgf-projections" + app.store.cipher_key.encode()).digest() \
            if app.store.cipher_key else b""

    def key(self, subject: str) -> str:
        if self.cipher is None:
            return subject
        return hmac.new(self.secret, subject.encode(), hashlib.sha256).hexdigest()[:40]

    def seal(self, value: Any) -> Any:
        if self.cipher is None:
            return value
        plain = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        return {"sealed": base64.b64encode(self.cipher.encrypt(plain)).decode()}

    def open(self, value: Any) -> Any:
        if self.cipher is None or not (isinstance(value, dict) and set(value) == {"sealed"}):
            return value
        return json.loads(self.cipher.decrypt(base64.b64decode(value["sealed"])))


class Conflict(Exception):
    """Another process moved a projection's position first: roll back and retry."""

    applied = 0  # notifications this process had applied (committed) before the conflict


def engine_of(app: TrialConduct) -> Engine:
    """The engine for an application's store (one per application for an in-memory store)."""
    if app.store.backend != "memory":
        return engine_for(app.store)
    if app not in _MEMORY_ENGINES:
        _MEMORY_ENGINES[app] = engine_for(app.store)
    return _MEMORY_ENGINES[app]


def engine_for(config: StoreConfig) -> Engine:
    """A SQLAlchemy engine on the events' database (memory: an in-process SQLite database)."""
    if config.backend == "memory":
        return _sqlite_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    if config.backend == "sqlite":
        name = config.env["SQLITE_DBNAME"]
        plain = config.sqlite_path is not None and not config.read_only  # else a file: URI (memory, read-only)
        path = str(URL.create("sqlite", database=name)) if plain else f"sqlite:///{name}&uri=true"
        return _sqlite_engine(path, connect_args={"timeout": config.wait})
    env = config.env
    url = URL.create(
        "postgresql+psycopg", username=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
        host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), database=env["POSTGRES_DBNAME"],
    )
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if config.schema:
        connect_args["options"] = f"-csearch_path={config.schema}"
    return sa.create_engine(url, connect_args=connect_args, pool_size=2, max_overflow=2, **JSON_CODEC)


def json_text(value: Any) -> str:
    """A JSON column's stored text for ``value`` (as SQLAlchemy writes it, through :data:`JSON_CODEC`)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# A "ref" key with a plain string value, or a "refs" key with a list of plain strings (no escapes).
_REF_ITEMS = re.compile(r'"ref":"([^"\\]*)"|"refs":\[((?:"[^"\\]*",?)*)\]')
_REF_KEYS = re.compile(r'"refs?":')
_STRINGS = re.compile(r'"([^"\\]*)"')


def refs_in_text(text: str, data: Any) -> list[str]:
    """:func:`.slices.collect_refs` of ``data``, read off its JSON text ``json_text(data)`` when that is
    plain: a rebuild writes every slice's text anyway, and walking the documents again took 1.3 µs an
    event.

    Exact: with no escaped quote in the text every ``"`` delimits a string, so ``"ref":`` and
    ``"refs":`` occur only as those keys; when every such key holds a plain string (``ref``) or a
    list of plain strings (``refs``) the matches, in document order, are what the walk collects in
    its order; anything else (another value, an escape) is walked as before. Tested against
    ``collect_refs`` on random documents and on every slice of a demo."""
    if '\\"' not in text:
        matches = list(_REF_ITEMS.finditer(text))
        if len(matches) == len(_REF_KEYS.findall(text)):
            found: set[str] = set()
            for match in matches:
                single, many = match.groups()
                if single is not None:
                    found.add(single)
                else:
                    found.update(_STRINGS.findall(many))
            return sorted(found, key=_ref_key)
    return collect_refs(data)


def _json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # rows written by the json module may hold what only it reads (NaN)
        return json.loads(text)


def empty_views(conn: Connection, names: Sequence[str]) -> set[str]:
    """The projections of ``names`` whose table holds no row. In a replay from there each subject's
    row is written once (a subject is one stream, derived in one chunk), so nothing need be looked up
    before writing it: the lookup was a statement of its own per chunk (``subject IN`` the chunk's
    subjects, a different text each time), and the driver's statement cache grew with the log."""
    return {n for n in names if conn.execute(sa.select(views[n].c.subject).limit(1)).first() is None}


def insert_many(conn: Connection, table: sa.Table, rows: list[tuple[Any, ...]]) -> None:
    """``INSERT`` rows (tuples in the table's column order, JSON columns already as text by
    :func:`json_text`, exactly what the column type writes) in one driver-level ``executemany``: a
    rebuild writes hundreds of thousands of rows, and SQLAlchemy's per-row processing was a fifth of
    writing them."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(quote(c.name) for c in table.columns)
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({', '.join([mark] * len(table.columns))})",
                         rows)  # type: ignore[arg-type]


def write_model_rows(conn: Connection, table: sa.Table, codec: Codec, rows: list[tuple[str, str, Any, int, int]], *,
                     replace: bool = True) -> None:
    """Write a stream model's rows (kind, subject, data, version, position), sealed by ``codec``, each
    replacing the row of its (subject, kind) (``replace=False``: the table holds none of them)."""
    if not rows:
        return
    sealed = [(codec.key(subject), kind, json_text(codec.seal(data)), version, position)
              for kind, subject, data, version, position in rows]
    if replace:
        for kind in sorted({row[1] for row in sealed}):
            keys = [row[0] for row in sealed if row[1] == kind]
            for i in range(0, len(keys), 500):
                conn.execute(sa.delete(table).where(table.c.kind == kind, table.c.subject.in_(keys[i:i + 500])))
    insert_many(conn, table, sealed)  # type: ignore[arg-type]


# JSON columns through orjson: the same documents as the json module writes, several times faster.
JSON_CODEC: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": _json_loads}


def _sqlite_engine(url: str, **kw: Any) -> Engine:
    engine = sa.create_engine(url, **kw, **JSON_CODEC)

    @sa_event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (SQLAlchemy's pysqlite recipe)

    @sa_event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read = connection.get_execution_options().get("pgf_read", False)
        connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine
