"""pgf correct / void / history through the CLI: reasons required, chains, nothing hidden, as-of."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from tests.conftest import REGISTER, Pgf


def _setup(pgf: Pgf) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18", "--source", "LIS-1")


def test_correct_shows_old_and_new_values_in_history(pgf: Pgf) -> None:
    _setup(pgf)
    out = json.loads(pgf.ok("correct", "S001#2", "--set", "anc=0.6", "--reason", "transcription error", "--json").stdout)
    assert out["ref"] == "S001#3" and out["changes"] == {"anc": 0.6}
    history = json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]
    correction = history[2]
    assert correction["type"] == "Corrected" and correction["supersedes"] == "S001#2"
    assert correction["data"] == {"anc": {"old": 0.4, "new": 0.6}} and correction["reason"] == "transcription error"
    assert history[1]["data"]["anc"] == 0.4 and history[1]["status"] == "corrected by S001#3"
    assert history[1]["source"] == "LIS-1" and history[1]["recorded_by"] == "coordinator1"
    table = pgf.ok("history", "S001", "--wide").stdout
    assert "anc: 0.4 -> 0.6" in table and "transcription error" in table


def test_correct_and_void_reject_bad_input_and_write_nothing(pgf: Pgf) -> None:
    _setup(pgf)
    pgf.rejected("correct", "S001#2", "--set", "anc=150", "--reason", "x", contains="out of range")
    pgf.rejected("correct", "S001#2", "--set", "kps=80", "--reason", "x", contains="has no field kps")
    pgf.rejected("correct", "S001#2", "--set", "anc", "--reason", "x", contains="FIELD=VALUE")
    pgf.rejected("correct", "S001#9", "--set", "anc=1", "--reason", "x", contains="no event S001#9")
    pgf.rejected("correct", "S404#2", "--set", "anc=1", "--reason", "x", contains="S404 is not registered")
    pgf.rejected("correct", "S001#2", "--set", "anc=1", "--reason", "", contains="--reason must not be empty")
    pgf.rejected("correct", "S001#2", "--set", "anc=1", contains="Missing option '--reason'", code=2)
    pgf.rejected("void", "S001#2", contains="Missing option '--reason'", code=2)
    pgf.rejected("void", "S001#1", "--reason", "x", contains="registration cannot be voided")
    pgf.rejected("void", "S001", "--reason", "x", contains="must look like S001#3")


def test_void_is_kept_and_marked_in_history(pgf: Pgf) -> None:
    _setup(pgf)
    pgf.ok("void", "S001#2", "--reason", "wrong patient")
    events = json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]
    assert [e["type"] for e in events] == ["Registered", "LabResulted", "Voided"]
    assert events[1]["status"] == "voided by S001#3" and events[2]["data"]["voided"] == "S001#2"
    pgf.rejected("void", "S001#2", "--reason", "again", contains="already voided")


def test_history_as_of_shows_what_the_database_knew_then(pgf: Pgf) -> None:
    _setup(pgf)
    time.sleep(0.01)
    cutoff = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    pgf.ok("correct", "S001#2", "--set", "anc=0.6", "--reason", "typo")
    then = json.loads(pgf.ok("history", "S001", "--as-of", cutoff, "--json").stdout)["events"]
    assert [e["ref"] for e in then] == ["S001#1", "S001#2"] and then[1]["status"] == ""
    assert json.loads(pgf.ok("history", "S001", "--as-of", "2000-01-01", "--json").stdout)["events"] == []
    pgf.rejected("history", "S001", "--as-of", "yesterday", contains="--as-of")


def test_history_csv_has_one_row_per_event(pgf: Pgf) -> None:
    _setup(pgf)
    lines = pgf.ok("history", "S001", "--csv").stdout.strip().splitlines()
    assert lines[0].startswith("ref,type,kind,clinical_date") and len(lines) == 3
