"""Database URL -> eventsourcing persistence settings.

``sqlite:///FILE`` (the default, created on first use) uses the library's SQLite module in WAL
mode; ``postgresql://user@host:port/db[?schema=NAME]`` uses its PostgreSQL module (the schema is
created if missing); ``memory://`` keeps everything in this process (tests and experiments).
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit
from uuid import uuid4

import attrs

from pgf_events.domain.errors import StoreError

DEFAULT_URL = "sqlite:///pgf-trial.db"
WAIT_ENV = "PGF_WAIT"  # seconds to wait for a store another process has locked (--wait)
DEFAULT_WAIT_SECONDS = 5
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
    wait: int = DEFAULT_WAIT_SECONDS  # seconds a command waits for another process's lock
    read_only: str | None = None  # why this SQLite store can only be read (read-only file, folder or medium)

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
    wait = wait_seconds()
    env = {**config.env, **cipher_env(key)}
    if config.backend == "sqlite":
        env["SQLITE_LOCK_TIMEOUT"] = str(wait)
    return attrs.evolve(config, env=env, cipher_key=key or None, wait=wait)


def wait_seconds(value: str | None = None) -> int:
    """``--wait``/``PGF_WAIT``: whole seconds (at least 1) to wait for a store another process has locked."""
    text = (os.environ.get(WAIT_ENV, "") if value is None else value).strip()
    if not text:
        return DEFAULT_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or seconds > 86_400:
        raise StoreError(f"--wait (or {WAIT_ENV}) {text!r} must be a number of seconds from 0 to 86400")
    return max(1, math.ceil(seconds))


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
    why = read_only_reason(path)
    if why is None:
        return StoreConfig(url=url, backend="sqlite", env=_sqlite_env(str(path)), sqlite_path=path)
    return StoreConfig(url=url, backend="sqlite", env={**_sqlite_env(_read_only_uri(path)), "CREATE_TABLE": "no"},
                       sqlite_path=path, read_only=why)


def read_only_reason(path: Path) -> str | None:
    """Why an existing store file cannot be written here (a read-only medium, file or folder), or None."""
    if not path.exists():
        return None
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    except OSError:
        pass
    if not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is read-only"
    return None


def _read_only_uri(path: Path) -> str:
    """SQLite's URI for reading a store without writing anything, not even the WAL index.

    A store whose write-ahead log is empty or gone (closed cleanly, or checkpointed) is opened
    ``immutable``: no lock or index file is needed. One whose log still holds commits is read with
    that log when its index file is there; otherwise it cannot be read as it is (said plainly).
    """
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if not wal.exists() or wal.stat().st_size == 0:
        return uri + "&immutable=1"
    if shm.exists() or os.access(path.parent, os.W_OK | os.X_OK):
        return uri
    raise StoreError(f"the store {path} is read-only and its write-ahead log {wal} still holds changes without "
                     f"its index {shm}; copy the store's files to a writable folder to read it")


def is_locked(error: BaseException | None) -> bool:
    """Whether an error (or one it came from) is SQLite's "database is locked" after its wait ran out."""
    while error is not None:
        if "database is locked" in str(error) or "database table is locked" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def locked_message(config: StoreConfig) -> str:
    """One line for a store another process holds locked longer than ``--wait``: which lock, and who."""
    return locked_text(config.display, config.sqlite_path, config.wait)


def locked_text(display: str, path: Path | None, wait: int | None) -> str:
    holders = lock_holders(path) if path is not None else []
    who = f" (held by {', '.join(holders)})" if holders else ""
    return (f"the store {display} is locked by another process{who}: SQLite's write lock was not free "
            f"within {wait or DEFAULT_WAIT_SECONDS} s; try again, or wait longer with --wait SECONDS (or {WAIT_ENV})")


def lock_holders(path: Path) -> list[str]:
    """``pid N (command)`` of the processes holding write locks on the store's files (Linux /proc/locks;
    readers hold shared locks too, and are not the ones in the way)."""
    inodes = set()
    for suffix in ("", "-shm", "-wal"):
        try:
            st = os.stat(f"{path}{suffix}")
        except OSError:
            continue
        inodes.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    holders: list[str] = []
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return holders
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->" or parts[3] != "WRITE" or parts[4] in ("", "-1"):
            continue
        try:
            major, minor, inode = parts[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
            pid = int(parts[4])
        except ValueError:
            continue
        if key in inodes and pid != os.getpid():
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                name = "?"
            entry = f"pid {pid} ({name})"
            if entry not in holders:
                holders.append(entry)
    return holders[:3]


def _sqlite_env(name: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": name,
        "SQLITE_LOCK_TIMEOUT": str(DEFAULT_WAIT_SECONDS),
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
