"""Site-scoped grants (pgf users grant --site): a coordinator or monitor of one site sees and touches
only that site's patients, on both backends; auditors read every site."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REGISTER, Pgf, enrol_via_cli
from tests.pgcluster import Cluster

XQ = [a if a != "PKU" else "XQ" for a in REGISTER]


def _trial(pgf: Pgf) -> Pgf:
    if pgf.url.startswith("postgresql"):
        for login in ("ada", "lina", "mona", "aud", "bob"):
            Cluster.session().ensure_login(login)  # one login per person, made by the database administrator
    enrol_via_cli(pgf)  # S001 at PKU
    pgf.ok("record", "register", "S002", *XQ)
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up")
    pgf.ok("users", "grant", "lina", "coordinator", "--site", "xq", "--reason", "XQ coordinator", user="ada")
    pgf.ok("users", "grant", "mona", "monitor", "--site", "PKU", "--reason", "PKU monitor", user="ada")
    pgf.ok("users", "grant", "aud", "auditor", "--reason", "audit", user="ada")
    return pgf


def test_a_coordinator_of_one_site_is_refused_another_sites_patient(pgf_any: Pgf) -> None:
    pgf = _trial(pgf_any)
    refusal = "lina may act only on patients of site XQ; S001 is at site PKU"
    for args in (["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4"],
                 ["correct", "S001#1", "--set", "weight_kg=62", "--reason", "typo"],
                 ["void", "S001#4", "--reason", "wrong patient"],
                 ["status", "S001"], ["history", "S001"]):
        pgf.rejected(*args, user="lina", contains=refusal)
    pgf.rejected("record", "register", "S003", *REGISTER, user="lina",
                 contains="lina may act only on patients of site XQ; S003 is at site PKU")
    pgf.ok("record", "register", "S003", *XQ, user="lina")
    pgf.ok("status", "S002", user="lina")
    listed = json.loads(pgf.ok("patients", "--json", user="lina").stdout)
    assert [r["subject"] for r in listed] == ["S002", "S003"]
    grants = json.loads(pgf.ok("users", "list", "--json", user="ada").stdout)
    assert {(g["user"], g["sites"]) for g in grants} >= {("lina", "XQ"), ("mona", "PKU"), ("aud", "all")}


def test_a_monitor_of_one_site_lists_only_its_patients_and_an_auditor_all(pgf_any: Pgf) -> None:
    pgf = _trial(pgf_any)
    qid = pgf.ok("query", "open", "S001#1", "--text", "date of birth?", user="mona").stdout.strip()
    pgf.rejected("query", "open", "S002#1", "--text", "date of birth?", user="mona",
                 contains="mona may act only on patients of site PKU; S002 is at site XQ")
    pgf.rejected("sdv", "S002#1", user="mona", contains="S002 is at site XQ")
    pgf.rejected("queries", "--subject", "S002", user="mona", contains="S002 is at site XQ")
    queries = json.loads(pgf.ok("queries", "--json", user="mona").stdout)
    assert [q["qid"] for q in queries] == [qid]
    assert {r["subject"] for r in json.loads(pgf.ok("patients", "--json", user="mona").stdout)} == {"S001"}
    due = json.loads(pgf.ok("due", "--on", "2025-03-01", "--json", user="mona").stdout)
    assert due["items"] and {i["subject"] for i in due["items"]} == {"S001"}
    assert {r["subject"] for r in json.loads(pgf.ok("patients", "--json", user="aud").stdout)} == {"S001", "S002"}
    due = json.loads(pgf.ok("due", "--on", "2025-03-01", "--json", user="aud").stdout)
    assert "S001" in {i["subject"] for i in due["items"]}
    due = json.loads(pgf.ok("due", "--on", "2025-03-01", "--json", user="lina").stdout)
    assert "S001" not in {i["subject"] for i in due["items"]}
    pgf.ok("status", "S002", user="aud")
    sdv = json.loads(pgf.ok("report", "sdv", "--json", user="mona").stdout)
    assert [p["subject"] for p in sdv["patients"]] == ["S001"]
    sdv = json.loads(pgf.ok("report", "sdv", "--site", "xq", "--json", user="aud").stdout)
    assert [p["subject"] for p in sdv["patients"]] == ["S002"] and [s["site"] for s in sdv["sites"]] == ["XQ"]
    pgf.rejected("report", "dosing", "--site", "XQ", user="aud", code=2, contains="--site applies to")


def test_auditors_and_admins_cannot_be_site_scoped(pgf_any: Pgf) -> None:
    pgf = _trial(pgf_any)
    pgf.rejected("users", "grant", "bob", "auditor", "--site", "PKU", user="ada", contains="reads every site")


def test_answering_or_closing_a_query_checks_the_site_itself(pgf: Pgf) -> None:
    """Defence in depth: monitoring's query actions refuse another site's patient whoever calls them
    (the CLI and the web check first), and write nothing."""
    from pgf_events.application import TrialConduct
    from pgf_events.domain.errors import AccessDenied
    from pgf_events.monitoring import answer_query, close_query, reopen_query
    from pgf_events.store import parse_url

    _trial(pgf)
    qid = pgf.ok("query", "open", "S001#1", "--text", "date of birth?", user="mona").stdout.strip()
    app = TrialConduct(parse_url(pgf.url, cipher_key=""))
    try:
        app.authorise("lina", "read")  # a coordinator of site XQ; S001 is at PKU
        head = app.recorder.max_notification_id()
        for act in (lambda: answer_query(app, qid, "1975-05-05", user="lina"),
                    lambda: close_query(app, qid, "ok", user="lina"),
                    lambda: reopen_query(app, qid, "again", user="lina")):
            with pytest.raises(AccessDenied, match="lina may act only on patients of site XQ; S001 is at site PKU"):
                act()
        assert app.recorder.max_notification_id() == head  # nothing written
        app.authorise("mona", "read")  # the PKU monitor may
        close_query(app, qid, "ok", user="mona")
        assert app.recorder.max_notification_id() == head + 1
    finally:
        app.close()
