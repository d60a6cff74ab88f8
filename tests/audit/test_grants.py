"""Least privilege on PostgreSQL: pgf roles are database roles, granted to per-person logins, and the
database itself enforces them (attacks from tests/audit/attacker.py style, as ordinary logins)."""

from __future__ import annotations

import json

import psycopg
import pytest

from pgf_events.audit.dbroles import role_name
from pgf_events.domain.users import DIRECTORY_ID
from pgf_events.store import parse_url
from tests.audit.attacker import Attacker
from tests.conftest import Pgf, enrol_via_cli
from tests.pgcluster import Cluster

pytestmark = pytest.mark.postgres
LAB = ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4"]


@pytest.fixture
def site(pg_url: str) -> Pgf:
    """A controlled store: ada is admin, cora a coordinator, ivan an investigator, aud an auditor, mona a monitor."""
    pgf = Pgf(pg_url)
    for login in ("ada", "cora", "ivan", "aud", "mona", "eve"):
        Cluster.session().ensure_login(login)  # the database administrator made one login per person
    enrol_via_cli(pgf)  # open store: any login may record, as itself
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up", user="ada")
    for login, role in [("cora", "coordinator"), ("ivan", "investigator"), ("aud", "auditor"), ("mona", "monitor")]:
        pgf.ok("users", "grant", login, role, user="ada")
    return pgf


def denied(db: Attacker, statement: str, params: tuple = ()) -> str:
    with pytest.raises(psycopg.Error) as caught:
        db.sql(statement, params)
    return str(caught.value)


def test_the_grant_is_the_databases(site: Pgf) -> None:
    schema = parse_url(site.url).schema
    admin = Attacker(site.url)
    held = admin.sql("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                     "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'cora'")
    admin.close()
    assert held == [(role_name(schema, "coordinator"),)]
    rows = json.loads(site.ok("users", "list", "--json", user="ada").stdout)
    assert {"user": "cora", "role": "coordinator", "granted_by": "ada"}.items() <= rows[1].items() or any(
        r["user"] == "cora" and r["granted_by"] == "ada" for r in rows)
    site.ok("users", "revoke", "cora", "coordinator", user="ada")
    site.rejected(*LAB, user="cora", contains="holds none of the store's roles")


def test_a_coordinator_records_and_reads_but_cannot_tamper(site: Pgf) -> None:
    assert site.ok(*LAB, user="cora").stdout.split()[0] == "S001#5"
    for args in (["report", "dosing"], ["status", "S001"], ["follow", "--once"], ["history", "S001"], ["audit", "verify"]):
        site.ok(*args, user="cora")
    db = Attacker(site.url, login="cora")
    e, chain, head = db.events, db.chain, db.head
    for statement in (f"UPDATE {e} SET topic = topic", f"DELETE FROM {e}", f"TRUNCATE {e}",
                      f"DROP TRIGGER pgf_notarise ON {e}", f"ALTER TABLE {e} DISABLE TRIGGER ALL",
                      f"UPDATE {head} SET position = 9000000000000000000",  # block every write
                      f"INSERT INTO {chain} VALUES (1000000, gen_random_uuid(), 1, '\\x00', false)",  # squat
                      f"DELETE FROM {chain}"):
        assert "permission denied" in denied(db, statement) or "must be owner" in denied(db, statement)
    # The event columns the database stamps cannot even be named by a login.
    patient = "topic LIKE 'pgf_events.domain.patient:%%'"
    row = db.sql(f"SELECT originator_id, topic, state FROM {e} WHERE {patient} AND originator_version = 5")[0]
    for column, value in (("recorded_by", "dr.wang"), ("recorded_at", "2020-01-01"), ("notification_id", 10**15)):
        assert "permission denied" in denied(
            db, f"INSERT INTO {e} (originator_id, originator_version, topic, state, {column}) VALUES (?, 6, ?, ?, ?)",
            (*row, value))
    # A role grant forged as an event on the user directory: refused by row-level security.
    assert "row-level security" in denied(
        db, f"INSERT INTO {e} (originator_id, originator_version, topic, state) VALUES (?, 99, ?, ?)",
        (DIRECTORY_ID, "pgf_events.domain.users:UserDirectory.RoleGranted", b'{"user":"cora","role":"admin"}'))
    # A raw insert of a copied payload: the database still stamps it as cora, now, and links it.
    db.sql(f"INSERT INTO {e} (originator_id, originator_version, topic, state) VALUES (?, 6, ?, ?)", row)
    stamped = db.sql(f"SELECT recorded_by, recorded_at > now() - interval '1 minute' FROM {e} "
                     f"WHERE {patient} AND originator_version = 6")
    db.close()
    assert stamped == [("cora", True)]
    site.ok("audit", "verify", user="aud")
    history = json.loads(site.ok("history", "S001", "--json", user="aud").stdout)
    assert [h["recorded_by"] for h in history["events"]][-2:] == ["cora", "cora"]


def test_readers_read_report_and_follow_but_write_nothing(site: Pgf) -> None:
    for login in ("aud", "mona"):
        for args in (["report", "survival"], ["status", "S001"], ["follow", "--once"], ["history", "S001"]):
            site.ok(*args, user=login)
        site.rejected(*LAB, user=login, contains="needs the coordinator or investigator role")
        db = Attacker(site.url, login=login)
        row = db.sql(f"SELECT originator_id, topic, state FROM {db.events} WHERE originator_version = 4 "
                     "AND topic LIKE 'pgf_events.domain.patient:%%'")[0]
        refusal = denied(
            db, f"INSERT INTO {db.events} (originator_id, originator_version, topic, state) VALUES (?, 9, ?, ?)", row)
        # auditors may insert nothing; monitors only their queries and source verification
        assert ("permission denied" if login == "aud" else "row-level security") in refusal
        db.close()
    site.ok("audit", "verify", user="aud")


def test_a_login_without_a_role_gets_nothing(site: Pgf) -> None:
    site.rejected("history", "S001", user="eve", contains="holds none of the store's roles")
    db = Attacker(site.url, login="eve")
    assert "permission denied" in denied(db, f"SELECT count(*) FROM {db.events}")
    db.close()


def test_only_admins_grant_even_through_the_database(site: Pgf) -> None:
    site.rejected("users", "grant", "cora", "admin", user="cora", contains="needs the admin role")
    db = Attacker(site.url, login="cora")
    schema = parse_url(site.url).schema
    assert "admin role" in denied(db, f"SELECT \"{schema}\".pgf_set_role('cora', 'admin', true)")
    assert "admin option" in denied(db, f'GRANT "{role_name(schema, "admin")}" TO cora')
    db.close()


def test_db_grants_prints_logins_for_people(pg_url: str) -> None:
    sql = Pgf(pg_url).ok("db", "grants", "--writer", "li.na", "--auditor", "kim").stdout
    assert 'CREATE ROLE "li.na" LOGIN;' in sql and "pgf users grant li.na coordinator" in sql
    assert "PASSWORD" not in sql


def test_grants_need_postgresql(pgf: Pgf) -> None:
    pgf.rejected("db", "grants", contains="PostgreSQL")
