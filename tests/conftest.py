"""Shared fixtures: stores on every backend, a CLI runner, and a store fingerprint.

PostgreSQL tests use ``PGF_TEST_POSTGRES_URL``. Without it they skip with a reason; with it set
and the server unreachable they fail (the store raises a clear connection error).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pgf_events.application import TrialConduct
from pgf_events.cli import cli
from pgf_events.store import parse_url

POSTGRES_ENV = "PGF_TEST_POSTGRES_URL"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests need a server (see README, Testing)")
    return url


def _schema_url(base: str) -> tuple[str, str]:
    schema = "t_" + uuid.uuid4().hex[:12]
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    import psycopg

    config = parse_url(base)
    env = config.env
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
    ) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/trial.db"
        return
    base = postgres_url()
    url, schema = _schema_url(base)
    yield url
    _drop_schema(base, schema)


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/trial.db"


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = postgres_url()
    url, schema = _schema_url(base)
    yield url
    _drop_schema(base, schema)


@pytest.fixture
def app() -> Iterator[TrialConduct]:
    """The application on the in-memory backend with a fixed clock."""
    application = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    yield application
    application.close()


def fingerprint(url: str) -> tuple[int, str]:
    """(event count, SHA-256 over every stored event): equal before and after means nothing was written."""
    application = TrialConduct(parse_url(url))
    try:
        digest = hashlib.sha256()
        count, start = 0, 1
        while True:
            batch = application.recorder.select_notifications(start=start, limit=500)
            for n in batch:
                digest.update(f"{n.id}|{n.originator_id}|{n.originator_version}|{n.topic}|".encode())
                digest.update(n.state)
                count += 1
            if len(batch) < 500:
                return count, digest.hexdigest()
            start = batch[-1].id + 1
    finally:
        application.close()


class Pgf:
    """Drive the real CLI against one store, as a coordinator would."""

    def __init__(self, url: str, user: str = "coordinator1"):
        self.url = url
        self.user = user
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, user: str | None = None) -> Result:
        # Global options (--protocol) may come first in args; --db and --user are prepended.
        argv = ["--db", self.url, "--user", user or self.user, *args]
        return self.runner.invoke(cli, argv, input=input, catch_exceptions=False)

    def ok(self, *args: str, **kw: Any) -> Result:
        result = self(*args, **kw)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def rejected(self, *args: str, contains: str = "", code: int = 1, **kw: Any) -> Result:
        """Run a command that must fail with one ``Error:`` line and write nothing."""
        before = fingerprint(self.url)
        result = self(*args, **kw)
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert contains in lines[0], (contains, lines[0])
        assert "Traceback" not in result.stderr
        assert fingerprint(self.url) == before, "a rejected command changed the store"
        return result


REGISTER = ["--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F", "--weight-kg", "61",
            "--transplant-date", "2025-01-10"]
SCREEN_OK = ["--kps", "80", "--expected-survival-months", "12"] + [
    arg for code in ("IN1", "IN4", "IN5") for arg in ("--criterion", f"{code}=yes")
] + [arg for n in range(1, 9) for arg in ("--criterion", f"EX{n}=no")]


def enrol_via_cli(pgf: Pgf, subject: str = "S001") -> None:
    pgf.ok("record", "register", subject, *REGISTER)
    pgf.ok("record", "consent", subject, "--date", "2025-02-18")
    pgf.ok("record", "screen", subject, "--date", "2025-02-20", *SCREEN_OK)
    pgf.ok("record", "enrol", subject, "--date", "2025-02-24")


@pytest.fixture
def pgf(sqlite_url: str) -> Pgf:
    return Pgf(sqlite_url)


@pytest.fixture
def pgf_any(store_url: str) -> Pgf:
    return Pgf(store_url)
