"""Row-level security by site on PostgreSQL: a site-scoped login connecting with its own password (as
psql would) reads and writes only its sites' rows; the CLI refuses and reports the same."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pgf_events.domain.patient import patient_id
from pgf_events.domain.review import review_id
from tests.conftest import REGISTER, Pgf, enrol_via_cli, make_pg_store
from tests.pgcluster import OWNER, Cluster

pytestmark = pytest.mark.postgres
XQ = [a if a != "PKU" else "XQ" for a in REGISTER]
EVENTS = "pgf_events"


@pytest.fixture
def trial() -> Any:
    url, schema = make_pg_store()
    pgf = Pgf(url)
    for login in ("ada", "lina", "mona", "aud"):
        Cluster.session().ensure_login(login)
    enrol_via_cli(pgf)  # S001 at PKU
    pgf.ok("record", "register", "S002", *XQ)
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up")
    pgf.ok("users", "grant", "coordinator1", "coordinator", "--reason", "all sites", user="ada")
    pgf.ok("users", "grant", "lina", "coordinator", "--site", "xq", "--reason", "XQ coordinator", user="ada")
    pgf.ok("users", "grant", "mona", "monitor", "--site", "PKU", "--reason", "PKU monitor", user="ada")
    pgf.ok("users", "grant", "aud", "auditor", "--reason", "audit", user="ada")
    pgf.ok("query", "open", "S001#2", "--text", "consent version?", user="mona")
    pgf.ok("report", "endpoints")  # the read models hold both sites' patients
    yield pgf, schema
    Cluster.session().drop_schema(schema)


def _sql(login: str, schema: str) -> Any:
    conn = Cluster.session().connect(login)
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


def test_psql_as_a_site_scoped_login_reads_only_its_sites_rows(trial: Any) -> None:
    _, schema = trial
    s001, s002 = patient_id("S001"), patient_id("S002")
    with _sql(OWNER, schema) as conn:  # the owner (row-level security does not bind it) sees both sites
        assert {r[0] for r in conn.execute(f"SELECT DISTINCT site FROM {EVENTS}")} == {"PKU", "XQ", None}
        assert conn.execute(f"SELECT site FROM {EVENTS} WHERE originator_id = %s", (review_id(s001),)).fetchone() == (
            "PKU",)
        assert conn.execute("SELECT count(*) FROM pgf_view_endpoints").fetchone()[0] == 2
    with _sql("lina", schema) as conn:
        rows = conn.execute(f"SELECT originator_id, site FROM {EVENTS}").fetchall()
        assert rows and {site for _, site in rows} == {"XQ", None}
        assert s001 not in {oid for oid, _ in rows} and s002 in {oid for oid, _ in rows}
        assert review_id(s001) not in {oid for oid, _ in rows}
        assert conn.execute(f"SELECT count(*) FROM {EVENTS} WHERE originator_id = %s", (s001,)).fetchone()[0] == 0
        chain = conn.execute("SELECT count(*) FROM pgf_chain").fetchone()[0]
        assert chain == len(rows)  # the links of the events she can read, no more
        for table in ("pgf_view_endpoints", "pgf_view_eligibility", "pgf_changes", "pgf_projection_tracking"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        assert conn.execute("UPDATE pgf_view_endpoints SET version = 99").rowcount == 0
    with _sql("aud", schema) as conn:  # an auditor reads every site
        assert {r[0] for r in conn.execute(f"SELECT DISTINCT site FROM {EVENTS}")} == {"PKU", "XQ", None}


def _insert(conn: Any, oid: uuid.UUID, version: int, topic: str, state: dict[str, Any]) -> None:
    conn.execute(f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                 (oid, version, topic, json.dumps(state).encode()))


def test_psql_as_a_site_scoped_login_cannot_write_another_sites_patient(trial: Any) -> None:
    import psycopg

    _, schema = trial
    s001 = patient_id("S001")
    lab = "pgf_events.domain.patient:Patient.LabResulted"
    attempts = [
        (s001, 5, lab, {"subject": "S001"}),  # a record on the PKU patient's stream
        (review_id(s001), 3, "pgf_events.domain.review:Review.QueryClosed", {"qid": "S001-Q1"}),  # its review
        (patient_id("S077"), 1, "pgf_events.domain.patient:Patient.Registered",  # a new patient at PKU
         {"subject": "S077", "record": {"_type_": "pgf.register", "_data_": {"site": "pku"}}}),
        (review_id(patient_id("S099")), 1, "pgf_events.domain.review:Review.Started",  # a review of no patient
         {"subject": "S099"}),
    ]
    for oid, version, topic, state in attempts:
        with _sql("lina", schema) as conn, pytest.raises(psycopg.Error) as refused:
            _insert(conn, oid, version, topic, state)
        assert "row-level security" in str(refused.value) or "no registered patient" in str(refused.value), topic
    with _sql("lina", schema) as conn:  # a patient of her own site: the database stamps XQ
        _insert(conn, patient_id("S078"), 1, "pgf_events.domain.patient:Patient.Registered",
                {"subject": "S078", "record": {"_type_": "pgf.register", "_data_": {"site": "xq"}}})
        assert conn.execute(f"SELECT site, recorded_by FROM {EVENTS} WHERE originator_id = %s",
                            (patient_id("S078"),)).fetchone() == ("XQ", "lina")


def test_the_cli_refuses_and_reports_by_site_for_a_scoped_login(trial: Any) -> None:
    pgf, _ = trial
    pgf.rejected("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", user="lina",
                 contains="lina may act only on patients of site XQ; S001 is at site PKU")
    pgf.rejected("query", "answer", "S001-Q1", "--text", "2.1", user="lina", contains="S001 is at site PKU")
    pgf.rejected("record", "register", "S001", *XQ, user="lina", contains="S001 is at site PKU")
    pgf.rejected("export", "odm", "/tmp/x.xml", user="lina", contains="covers every site")
    pgf.rejected("follow", "--once", user="lina", contains="covers every site")
    report = json.loads(pgf.ok("report", "endpoints", "--json", user="lina").stdout)
    assert [r["subject"] for r in report["rows"]] == ["S002"] and report["site_scope"] == ["XQ"]
    human = pgf.ok("report", "eligibility", user="lina").stdout
    assert "site XQ only" in human.splitlines()[0] and "S001" not in human
    everyone = json.loads(pgf.ok("report", "endpoints", "--json", user="aud").stdout)
    assert [r["subject"] for r in everyone["rows"]] == ["S001", "S002"] and "site_scope" not in everyone
    assert [r["subject"] for r in json.loads(pgf.ok("patients", "--json", user="lina").stdout)] == ["S002"]
    deviations = json.loads(pgf.ok("report", "deviations", "--json", user="mona").stdout)
    assert deviations["site_scope"] == ["PKU"] and {r["site"] for r in deviations["rows"]} <= {"PKU"}
    pgf.ok("record", "lab", "S002", "--date", "2025-03-01", "--anc", "0.4", user="lina")


def test_db_upgrade_stamps_an_older_stores_rows_with_their_site(pg_url: str) -> None:
    schema = pg_url.rsplit("schema=", 1)[1]
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    with _sql(OWNER, schema) as conn:  # make it a store from before the site scope
        for statement in (
            f"DROP TRIGGER pgf_stamp_site ON {EVENTS}", f"DROP POLICY pgf_read ON {EVENTS}",
            f"CREATE POLICY pgf_read ON {EVENTS} FOR SELECT USING (true)", f"DROP POLICY pgf_write ON {EVENTS}",
            f"CREATE POLICY pgf_write ON {EVENTS} FOR INSERT WITH CHECK (pgf_may_write(originator_id, topic))",
            "DROP POLICY pgf_read ON pgf_chain", f"ALTER TABLE {EVENTS} DROP COLUMN site",
            "DROP TABLE pgf_stream_sites", "DROP TABLE pgf_site_grants",
            "DROP FUNCTION pgf_set_role(text, text, boolean, text[])",
            "ALTER TABLE pgf_store DISABLE TRIGGER pgf_append_only", "DELETE FROM pgf_store WHERE key = 'site_scope'",
            "ALTER TABLE pgf_store ENABLE TRIGGER pgf_append_only",
        ):
            conn.execute(statement)
    for login in ("ada", "lina"):
        Cluster.session().ensure_login(login)
    pgf.ok("record", "register", "S002", *XQ)
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up")
    pgf.ok("users", "grant", "lina", "coordinator", "--site", "XQ", "--reason", "XQ coordinator", user="ada")
    pgf.ok("users", "grant", OWNER, "admin", "--reason", "upgrades the store it owns", user="ada")
    with _sql("lina", schema) as conn:  # before the upgrade the database does not know sites
        assert conn.execute(f"SELECT count(*) FROM {EVENTS} WHERE originator_id = %s",
                            (patient_id("S001"),)).fetchone()[0] == 4
    out = pgf.ok("db", "upgrade", user=OWNER).stdout
    assert "row-level security by site; 5 stored event(s) stamped" in out
    with _sql("lina", schema) as conn:
        assert conn.execute(f"SELECT count(*) FROM {EVENTS} WHERE originator_id = %s",
                            (patient_id("S001"),)).fetchone()[0] == 0
        assert {r[0] for r in conn.execute(f"SELECT DISTINCT site FROM {EVENTS}")} == {"XQ", None}
    Cluster.session().ensure_login("aud")
    pgf.ok("users", "grant", "aud", "auditor", "--reason", "audit", user="ada")
    pgf.ok("audit", "verify", user="aud")  # the chain does not cover the site column: still intact
    pgf.rejected("status", "S001", user="lina", contains="S001 is at site PKU")
    assert "nothing to upgrade" in pgf.ok("db", "upgrade", user=OWNER).stdout
