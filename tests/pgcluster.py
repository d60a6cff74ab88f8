"""A throw-away PostgreSQL cluster with SCRAM password authentication, started by the tests.

``initdb --auth=scram-sha-256`` from the installed server binaries, run as the ``postgres`` OS
user (via ``runuser``, when the tests run as root) in a temporary folder it owns, on a free port of
its own, started with ``pg_ctl`` and stopped when the session ends. Every person in the tests gets a
LOGIN role with a password; connections really authenticate. ``OWNER`` creates the stores (it may
create roles, as the README asks of a store's owner); it is not a superuser.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

SUPERUSER = "postgres"
OWNER = "pgf_owner"
DATABASE = "test"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): install postgresql")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    _session: ClassVar[Cluster | None] = None
    _failed: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="pgf-test-pg-"))
        self.data = self.folder / "data"
        self.secret = secrets.token_hex(8)
        self.port = _free_port()
        self.logins: set[str] = set()
        as_postgres = os.geteuid() == 0
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []
        if as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        os.chmod(self.folder, 0o700)
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password(SUPERUSER) + "\n")
        if as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "--auth=scram-sha-256", f"--username={SUPERUSER}",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-o", options, "start")
        self.running = True
        with self.connect(SUPERUSER, "postgres") as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
            conn.execute(f"CREATE ROLE {OWNER} LOGIN CREATEROLE PASSWORD '{self.password(OWNER)}'")
        with self.connect(SUPERUSER) as conn:
            conn.execute(f"GRANT CREATE ON DATABASE {DATABASE} TO {OWNER}")
        self.logins.add(OWNER)

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, cwd=self.folder)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stderr.strip() or result.stdout.strip()}")

    # ------------------------------------------------------------------ the session's cluster
    @classmethod
    def session(cls) -> Cluster:
        if cls._failed:
            raise RuntimeError(cls._failed)
        if cls._session is None:
            try:
                cls._session = Cluster()
            except Exception as e:
                cls._failed = f"the test PostgreSQL cluster could not start: {e}"
                raise RuntimeError(cls._failed) from e
        return cls._session

    @classmethod
    def stop_session(cls) -> None:
        if cls._session is not None:
            cls._session.stop()
            cls._session = None

    def stop(self) -> None:
        if self.running:
            subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                           capture_output=True, cwd=self.folder)
            self.running = False
        shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------------ logins and URLs
    def password(self, login: str) -> str:
        return f"{self.secret}-{login}"

    def connect(self, login: str = SUPERUSER, database: str = DATABASE):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=database, user=login,
                               password=self.password(login), autocommit=True)

    def ensure_login(self, login: str) -> None:
        """One login per person, with a password (created on first use)."""
        if login in self.logins:
            return
        from psycopg import sql

        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(login), sql.Literal(self.password(login))))
        self.logins.add(login)

    def url(self, login: str, schema: str | None = None) -> str:
        self.ensure_login(login)
        query = f"?schema={schema}" if schema else ""
        return (f"postgresql://{quote(login, safe='')}:{quote(self.password(login), safe='')}"
                f"@127.0.0.1:{self.port}/{DATABASE}{query}")

    def owns(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme.startswith("postgres") and parts.port == self.port

    @classmethod
    def login_url(cls, url: str, login: str) -> str:
        """``url`` (of the session's cluster) as ``login``; other URLs unchanged."""
        cluster = cls._session
        if cluster is None or not cluster.owns(url):
            return url
        cluster.ensure_login(login)
        parts = urlsplit(url)
        netloc = f"{quote(login, safe='')}:{quote(cluster.password(login), safe='')}@{parts.hostname}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def drop_schema(self, schema: str) -> None:
        from pgf_events.audit.dbroles import role_name
        from pgf_events.domain.users import ROLES

        with self.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for role in ROLES:  # a role still referenced elsewhere stays (the cluster is throw-away)
                with contextlib.suppress(Exception):
                    conn.execute(f'DROP ROLE IF EXISTS "{role_name(schema, role)}"')
