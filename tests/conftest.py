"""Shared fixtures: stores on every backend, a CLI runner, and a store fingerprint.

PostgreSQL tests run on a throw-away cluster the suite starts itself (tests/pgcluster.py: initdb with
SCRAM passwords, its own port and folder, stopped at the end), so logins really authenticate.
``PGF_TEST_POSTGRES_URL`` switches them on: unset, they skip with a reason; set, they fail if the
cluster cannot start.
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

from pgf_events import identity
from pgf_events.application import TrialConduct
from pgf_events.cli import cli
from pgf_events.store import parse_url
from tests.pgcluster import OWNER, Cluster

POSTGRES_ENV = "PGF_TEST_POSTGRES_URL"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DEFAULT_USER = "coordinator1"


def postgres_cluster() -> Cluster:
    """The session's throw-away PostgreSQL cluster (SCRAM passwords), or skip when PostgreSQL is off."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests need the server binaries (see README, Testing)")
    return Cluster.session()


def _new_schema() -> str:
    return "t_" + uuid.uuid4().hex[:12]


def make_pg_store(user: str = DEFAULT_USER) -> tuple[str, str]:
    """A new store in its own schema, created by the owner login; returns (``user``'s URL, schema)."""
    cluster = postgres_cluster()
    schema = _new_schema()
    TrialConduct(parse_url(cluster.url(OWNER, schema), cipher_key="")).close()
    return cluster.url(user, schema), schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty store URL on each backend (PostgreSQL: made by its owner, opened as coordinator1)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/trial.db"
        return
    url, schema = make_pg_store()
    yield url
    Cluster.session().drop_schema(schema)


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/trial.db"


@pytest.fixture
def pg_url() -> Iterator[str]:
    url, schema = make_pg_store()
    yield url
    Cluster.session().drop_schema(schema)


@pytest.fixture
def pg_unmade_url() -> Iterator[str]:
    """A PostgreSQL URL (the owner login) whose schema holds nothing yet."""
    cluster = postgres_cluster()
    schema = _new_schema()
    yield cluster.url(OWNER, schema)
    cluster.drop_schema(schema)


@pytest.fixture
def app() -> Iterator[TrialConduct]:
    """The application on the in-memory backend with a fixed clock."""
    application = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    yield application
    application.close()


def fingerprint(url: str) -> tuple[int, str]:
    """(event count, SHA-256 over every stored event): equal before and after means nothing was written.

    Read as the store's owner on PostgreSQL (the acting login may not be allowed to read)."""
    application = TrialConduct(parse_url(Cluster.login_url(url, OWNER)))
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
    """Drive the real CLI against one store, as a coordinator would, in this process.

    Identity is never taken from an option or the environment (pgf_events.identity), so the
    harness authenticates each call as ``user``: on SQLite it replaces the CLI's local
    authenticator inside this process (``identity.authenticator_replaced``, the documented seam);
    on PostgreSQL it connects as ``user``'s own login in the test cluster (made on first use, with a
    SCRAM password). ``--user`` is passed too, restating who that is.
    """

    def __init__(self, url: str, user: str = DEFAULT_USER):
        self.url = url
        self.user = user
        self.runner = CliRunner()

    def url_for(self, user: str) -> str:
        return Cluster.login_url(self.url, user)

    def __call__(self, *args: str, input: str | None = None, user: str | None = None,
                 env: dict[str, str | None] | None = None) -> Result:
        # Global options (--protocol) may come first in args; --db and --user are prepended.
        user = user or self.user
        argv = ["--db", self.url_for(user), "--user", user, *args]
        with identity.authenticator_replaced(lambda: user):
            return self.runner.invoke(cli, argv, input=input, env=env, catch_exceptions=False)

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


@pytest.fixture(scope="session", autouse=True)
def _postgres_cluster_lifetime() -> Iterator[None]:
    """Stop the session's cluster (if a test started one) when the session ends."""
    yield
    Cluster.stop_session()
