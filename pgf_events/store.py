"""Database URL -> eventsourcing persistence settings.

``sqlite:///FILE`` (the default, created on first use) uses the library's SQLite module in WAL
mode; ``postgresql://user@host:port/db[?schema=NAME]`` uses its PostgreSQL module (the schema is
created if missing); ``memory://`` keeps everything in this process (tests and experiments).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit
from uuid import uuid4

import attrs

from pgf_events.domain.errors import StoreError

DEFAULT_URL = "sqlite:///pgf-trial.db"
SQLITE_LOCK_TIMEOUT_SECONDS = 30
# Recorders that chain every event in the same transaction (pgf_events.audit.recorders).
SQLITE_RECORDER_TOPIC = "pgf_events.audit.recorders_sqlite:ChainedSQLiteRecorder"
POSTGRES_RECORDER_TOPIC = "pgf_events.audit.recorders_postgres:ChainedPostgresRecorder"


@attrs.frozen
class StoreConfig:
    url: str
    backend: str  # "sqlite" | "postgresql" | "memory"
    env: dict[str, str]
    sqlite_path: Path | None = None
    schema: str | None = None
    cipher_key: str | None = attrs.field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The URL without any password, for messages."""
        if self.backend == "postgresql":
            parts = urlsplit(self.url)
            if parts.password:
                netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
                return parts._replace(netloc=netloc).geturl()
        return self.url

    def exists(self) -> bool:
        return self.sqlite_path is None or self.sqlite_path.exists()


CIPHER_ENV = "PGF_CIPHER_KEY"


def cipher_env(key: str | None) -> dict[str, str]:
    """Library settings for encryption at rest (AES-GCM via the cryptography package), or none.

    Both keys are always set, so a stray ``CIPHER_KEY`` in the environment cannot switch encryption on.
    """
    if not key:
        return {"CIPHER_TOPIC": "", "CIPHER_KEY": ""}
    try:
        raw = base64.b64decode(key.encode(), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) not in (16, 24, 32):
        raise StoreError(f"{CIPHER_ENV} must be 16, 24 or 32 bytes in base64 (make one with 'pgf keygen')")
    return {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": key}


def parse_url(url: str | None, cipher_key: str | None = None) -> StoreConfig:
    """``cipher_key`` defaults to ``$PGF_CIPHER_KEY``; pass ``""`` to open without encryption."""
    url = (url or os.environ.get("PGF_DB") or DEFAULT_URL).strip()
    key = os.environ.get(CIPHER_ENV) if cipher_key is None else cipher_key
    config = _parse(url)
    return attrs.evolve(config, env={**config.env, **cipher_env(key)}, cipher_key=key or None)


def _parse(url: str) -> StoreConfig:
    if url in ("memory://", "memory:"):
        return StoreConfig(url=url, backend="memory", env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    if "://" not in url:  # a plain file path: an SQLite store (`--db trial.db`, `--db /data/trial.db`)
        return _sqlite("sqlite:///" + url)
    scheme = url.split("://", 1)[0].lower()
    driver = scheme.split("+")[0]
    if driver == "sqlite":
        return _sqlite(url)
    if driver in ("postgresql", "postgres"):
        return _postgres(url)
    raise StoreError(f"unsupported database {scheme!r}; use sqlite:///FILE or postgresql://user@host/db")


def _sqlite(url: str) -> StoreConfig:
    # sqlite:///relative/path, sqlite:////absolute/path, sqlite:// or sqlite:///:memory: (in memory)
    database = unquote(url.split("://", 1)[1].split("?", 1)[0])
    database = database[1:] if database.startswith("/") else database
    if not database or database == ":memory:":
        name = f"file:pgf-{uuid4().hex}?mode=memory&cache=shared"
        return StoreConfig(url=url, backend="sqlite", env=_sqlite_env(name))
    path = Path(database).expanduser()
    if not path.parent.exists():
        raise StoreError(f"the folder {path.parent} for the SQLite store does not exist")
    return StoreConfig(url=url, backend="sqlite", env=_sqlite_env(str(path)), sqlite_path=path)


def _sqlite_env(name: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": name,
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_SECONDS),
        "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER_TOPIC,
    }


def _postgres(url: str) -> StoreConfig:
    parsed: SplitResult = urlsplit(url)
    database = unquote(parsed.path.lstrip("/"))
    if not database:
        raise StoreError("the PostgreSQL URL names no database (postgresql://user@host:5432/DBNAME)")
    try:
        port = parsed.port or 5432
    except ValueError:
        raise StoreError(f"the port in {url!r} is not a number") from None
    query = parse_qs(parsed.query)
    schema = query["schema"][-1] if "schema" in query else None
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": database,
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": unquote(parsed.username) if parsed.username else os.environ.get("PGUSER", "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password) if parsed.password else os.environ.get("PGPASSWORD", ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
    }
    if schema:
        if not schema.replace("_", "").isalnum():
            raise StoreError(f"the schema name {schema!r} must be letters, digits and underscores")
        env["POSTGRES_SCHEMA"] = schema
    return StoreConfig(url=url, backend="postgresql", env=env, schema=schema)


def prepare(config: StoreConfig) -> None:
    """Check the server answers and create the schema if needed, with one clear error if not."""
    if config.backend != "postgresql":
        return
    import psycopg  # noqa: PLC0415 - only PostgreSQL users pay for the driver import

    env = config.env
    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, connect_timeout=5,
            autocommit=True,
        ) as conn:
            # Look first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
            # exists, which the writer and auditor roles of 'pgf db grants' do not have.
            if config.schema and not conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (config.schema,)
            ).fetchone():
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{config.schema}"')
    except psycopg.Error as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreError(f"cannot connect to PostgreSQL at {config.display}: {first_line}") from None
