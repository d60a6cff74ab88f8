"""The monitoring loop through the real CLI on both backends: enter, query, answer by correction,
close, verify, sign, freeze, lock, every write refused, unlock."""

from __future__ import annotations

import json
from pathlib import Path

from tests.audit.keys import CliSigner
from tests.conftest import Pgf, enrol_via_cli


def _queries(pgf: Pgf, *args: str) -> list[dict]:
    return json.loads(pgf.ok("queries", "--json", *args).stdout)


def test_the_whole_monitoring_loop(pgf_any: Pgf, tmp_path: Path) -> None:
    pgf = pgf_any
    investigator, data_manager = CliSigner(pgf, tmp_path, "dr.li"), CliSigner(pgf, tmp_path, "dm.wu")
    enrol_via_cli(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61")
    lab = pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18", "-q").stdout.strip()
    assert lab == "S001#6"
    qid = pgf.ok("query", "open", lab, "--field", "plt", "--text", "PLT 18? the report says 81").stdout.strip()
    assert qid == "S001-Q1"
    [q] = _queries(pgf, "--status", "open")
    assert q["ref"] == lab and q["field"] == "plt" and q["age_days"] == 0 and q["site"] == "PKU"
    pgf.ok("correct", lab, "--set", "plt=81", "--reason", "transposed digits", "--answers", qid)
    [q] = _queries(pgf)
    assert q["status"] == "answered" and q["thread"][-1]["ref"] == "S001#7"
    pgf.ok("query", "close", qid, "--text", "checked against the lab report")
    assert _queries(pgf, "--status", "closed")[0]["qid"] == qid
    assert _queries(pgf, "--status", "open") == []
    pgf.ok("sdv", "S001#2", "S001#3", "S001#4", "S001#5", lab)
    sdv = json.loads(pgf.ok("report", "sdv", "--json").stdout)
    patient = sdv["patients"][0]
    assert patient["subject"] == "S001" and patient["not_yet"] == 0 and patient["verified"] == patient["required"]
    investigator.sign("S001", "--meaning", "review")
    pgf.ok("freeze", "S001", "--reason", "reviewed and signed", user="dm.wu")
    pgf.rejected("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.5", contains="frozen by dm.wu")
    locked = json.loads(pgf.ok("lock", "--reason", "final analysis", *data_manager.args(), user="dm.wu").stdout)
    assert locked["statement"]["signer"] == "dm.wu" and locked["signature"]
    for args in (["record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.5"],
                 ["correct", lab, "--set", "anc=0.5", "--reason", "x"],
                 ["void", lab, "--reason", "x"],
                 ["sign", "S001", "--meaning", "approval", *investigator.args()],
                 ["query", "open", lab, "--text", "again?"],
                 ["query", "reopen", qid, "--text", "again"],
                 ["sdv", "S001#2"],
                 ["unfreeze", "S001", "--reason", "x"],
                 ["record", "register", "S002", "--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F",
                  "--weight-kg", "61", "--transplant-date", "2025-01-10"]):
        pgf.rejected(*args, contains="database is locked")
    pgf.rejected("lock", "--reason", "again", *data_manager.args(), user="dm.wu", contains="already locked (locked by dm.wu")
    pgf.ok("unlock", "--reason", "late SAE follow-up")
    pgf.ok("unfreeze", "S001", "--reason", "late SAE follow-up")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.5")
    history = pgf.ok("history", "S001").stdout
    assert "S001-Q1" in history and "frozen" in history
    signatures = json.loads(pgf.ok("audit", "signatures", "S001", "--json").stdout)
    assert signatures[0]["invalidated_by"] == "S001#9"  # the lab after unfreezing, not the monitoring


def test_a_correction_unverifies_a_verified_record(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18")  # S001#6
    pgf.ok("sdv", "S001#2", "S001#6")
    pgf.ok("correct", "S001#6", "--set", "anc=0.6", "--reason", "transcription error")
    rows = json.loads(pgf.ok("report", "sdv", "--json").stdout)["records"]
    status = {r["ref"]: r for r in rows}
    assert status["S001#6"]["status"] == "invalidated" and status["S001#6"]["changed_by"] == "S001#7"
    assert status["S001#2"]["status"] == "verified"
    assert status["S001#3"]["status"] == "not yet" and status["S001#3"]["required"]
    pgf.ok("sdv", "S001#6")
    rows = json.loads(pgf.ok("report", "sdv", "--json").stdout)["records"]
    assert {r["ref"]: r["status"] for r in rows}["S001#6"] == "verified"


def test_query_commands_reject_bad_input(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.rejected("query", "open", "S001#9", "--text", "x", contains="no event S001#9")
    pgf.rejected("query", "open", "S001#2", "--field", "anc", "--text", "x", contains="has no field 'anc'")
    pgf.rejected("query", "answer", "S001-Q1", "--text", "x", contains="no query S001-Q1")
    pgf.rejected("query", "close", "Q1", contains="must look like S001-Q1")
    pgf.ok("query", "open", "S001#2", "--text", "date?")
    pgf.rejected("query", "reopen", "S001-Q1", "--text", "x", contains="only a closed query")
    pgf.ok("query", "close", "S001-Q1")
    pgf.rejected("query", "answer", "S001-Q1", "--text", "x", contains="reopen it before answering")
    pgf.rejected("correct", "S001#3", "--set", "kps=90", "--reason", "x", "--answers", "S002-Q1",
                 contains="not about patient S001")
    pgf.rejected("freeze", "S404", "--reason", "x", contains="S404")
    pgf.rejected("unfreeze", "S001", "--reason", "x", contains="not frozen")
    pgf.rejected("unlock", "--reason", "x", contains="not locked")


def test_automatic_queries_are_raised_once_and_closed_when_resolved(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "45", "--plt", "18")
    pgf.ok("record", "ae", "S001", "--onset", "2025-03-02", "--term", "Sepsis", "--grade", "3",
           "--serious", "hospitalisation")
    checks = {q["check"].split(":")[0]: q for q in _queries(pgf)}
    assert set(checks) >= {"implausible_lab", "sae_awareness"}
    assert checks["implausible_lab"]["ref"] == "S001#6" and checks["implausible_lab"]["opened_by"] == "pgf-edit-check"
    pgf.ok("record", "lab", "S001", "--date", "2025-03-03", "--anc", "0.6")  # the finding is not raised again
    assert sum(q["check"].startswith("implausible_lab") for q in _queries(pgf)) == 1
    pgf.ok("correct", "S001#6", "--set", "anc=4.5", "--reason", "unit error")
    pgf.ok("correct", "S001#7", "--set", "aware=2025-03-02T10:00", "--reason", "from the site e-mail")
    closed = {q["check"].split(":")[0] for q in _queries(pgf, "--status", "closed")}
    assert closed >= {"implausible_lab", "sae_awareness"}
    # a dose whose window closed by the latest clinical date, with nothing explaining it
    pgf.ok("record", "lab", "S001", "--date", "2025-03-12", "--anc", "0.7")
    missed = [q for q in _queries(pgf, "--status", "open") if q["check"].startswith("missed_dose")]
    assert [q["check"] for q in missed] == ["missed_dose:2"]


def test_queries_sdv_freeze_and_lock_are_in_the_audit_trail(pgf: Pgf, tmp_path: Path) -> None:
    import csv

    enrol_via_cli(pgf)
    data_manager = CliSigner(pgf, tmp_path, "dm.wu")
    qid = pgf.ok("query", "open", "S001#2", "--text", "consent version?").stdout.strip()
    pgf.ok("query", "answer", qid, "--text", "v2.1, as on the signed form")
    pgf.ok("sdv", "S001#2")
    pgf.ok("freeze", "S001", "--reason", "reviewed")
    pgf.ok("lock", "--reason", "interim analysis", *data_manager.args(), user="dm.wu")
    path = f"{tmp_path}/trail.csv"
    pgf.ok("export", "audit-trail", path)
    with open(path, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "monitoring"]
    assert [r["type"] for r in rows] == ["QueryOpened", "QueryAnswered", "SourceVerified", "Frozen", "Locked"]
    assert rows[0]["ref"] == qid and rows[0]["supersedes"] == "S001#2" and rows[0]["site"] == "PKU"
    assert rows[3]["reason"] == "reviewed" and "checkpoint" in rows[4]["what"]
