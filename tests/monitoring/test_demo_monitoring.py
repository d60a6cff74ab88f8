"""The demo cohort is monitored: queries in every status, SDV in progress, one frozen patient."""

from __future__ import annotations

import json
from typing import Any

from pgf_events.commands import Command
from pgf_events.demo_monitoring import plan, required_refs
from tests.conftest import Pgf


def test_demo_has_queries_in_every_status_sdv_progress_and_a_frozen_patient(tmp_path: Any) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/d.db")
    out = pgf.ok("demo", "--patients", "20", "--seed", "2").stdout
    assert "1 patient frozen" in out
    statuses = {q["status"] for q in json.loads(pgf.ok("queries", "--json").stdout)}
    assert statuses == {"open", "answered", "closed"}
    sdv = json.loads(pgf.ok("report", "sdv", "--json").stdout)["patients"]
    verified = [p["verified"] / p["required"] for p in sdv if p["required"] and p["subject"].startswith("S0")]
    assert min(verified) == 0 and max(verified) == 1 and any(0 < v < 1 for v in verified)
    frozen = [p["subject"] for p in sdv if p["frozen"]]
    assert len(frozen) == 1
    pgf.rejected("record", "contact", frozen[0], "--date", "2025-12-01", "--status", "alive", contains="frozen by")


def test_the_sdv_plan_of_a_batch_names_consent_screening_enrolment_doses_saes_and_endpoint_labs() -> None:
    def rec(kind: str, **fields: Any) -> Command:
        return Command("record", subject="S001", kind=kind, fields=fields)

    commands = [rec("register"), rec("consent", date="2025-02-18"), rec("screen", date="2025-02-20"),
                rec("enrol", date="2025-02-24"), rec("infusion", date="2025-02-25"),
                rec("lab", date="2025-02-20"), rec("lab", date="2025-03-01"), rec("lab", date="2025-06-01"),
                rec("ae", onset="2025-03-02", serious=["hospitalisation"]), rec("ae", onset="2025-03-03")]
    assert required_refs("S001", commands) == ["S001#2", "S001#3", "S001#4", "S001#5", "S001#7", "S001#9"]
    assert plan("S001", commands, 1) == plan("S001", commands, 1)  # deterministic per seed
