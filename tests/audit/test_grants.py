"""``pgf db grants``: a writer that can only add, an auditor that can only read (PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from pgf_events.store import parse_url
from tests.conftest import REGISTER, Pgf

pytestmark = pytest.mark.postgres


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role).render_as_string(hide_password=False)


def _connect(url: str) -> psycopg.Connection:
    env = parse_url(url).env
    return psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                           user=env["POSTGRES_USER"], autocommit=True)


@pytest.fixture
def roles(pg_url: str) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    writer, auditor = f"pgfw_{suffix}", f"pgfa_{suffix}"
    yield writer, auditor
    with _connect(pg_url) as conn:
        for role in (writer, auditor):
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_the_writer_adds_but_cannot_change_and_the_auditor_only_reads(pg_url: str, roles: tuple[str, str]) -> None:
    writer, auditor = roles
    owner = Pgf(pg_url)
    owner.ok("record", "register", "S001", *REGISTER)
    sql = owner.ok("db", "grants", "--writer", writer, "--auditor", auditor).stdout
    assert "GRANT SELECT, INSERT ON" in sql and "UPDATE ON" in sql and "DELETE" not in sql.split("-- Writer")[1]
    with _connect(pg_url) as conn:
        conn.execute(sql)

    as_writer = Pgf(_as(pg_url, writer))
    assert as_writer.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4").stdout.split()[0] == "S001#2"
    schema = parse_url(pg_url).schema
    with _connect(_as(pg_url, writer)) as conn:
        for statement in (f'UPDATE "{schema}".pgf_events SET topic = topic',
                          f'DELETE FROM "{schema}".pgf_chain',
                          f'TRUNCATE "{schema}".pgf_events',
                          f'DROP TRIGGER pgf_append_only ON "{schema}".pgf_events',
                          f'ALTER TABLE "{schema}".pgf_events DISABLE TRIGGER ALL'):
            with pytest.raises(psycopg.Error, match=r"permission denied|must be owner"):
                conn.execute(statement)

    as_auditor = Pgf(_as(pg_url, auditor))
    assert "chain intact: 2 events" in as_auditor.ok("audit", "verify").stdout
    as_auditor.ok("history", "S001")
    as_auditor.rejected("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.5", contains="may only read")


def test_grants_need_postgresql(pgf: Pgf) -> None:
    pgf.rejected("db", "grants", contains="PostgreSQL")
