"""The vital-signs kind, added through the record-kind registry alone: CLI, import, history, correction,
ODM and SDTM VS follow from its value class and registry entry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.conftest import REGISTER, Pgf

VITALS = ["--date", "2025-02-25", "--timepoint", "15 min post-infusion", "--temperature", "38.4", "--pulse", "112",
          "--systolic", "96", "--diastolic", "58", "--spo2", "93"]


def _registered(pgf: Pgf) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)


def test_vitals_are_recorded_shown_and_corrected(pgf_any: Pgf) -> None:
    _registered(pgf_any)
    assert pgf_any.ok("record", "vitals", "S001", *VITALS).stdout.startswith("S001#2")
    pgf_any.ok("correct", "S001#2", "--set", "pulse=108", "--reason", "re-read from the monitor strip")
    events = json.loads(pgf_any.ok("history", "S001", "--json").stdout)["events"]
    assert [e["kind"] for e in events] == ["register", "vitals", "correct"]
    assert "108" in pgf_any.ok("history", "S001").stdout


def test_vitals_reject_impossible_values_and_write_nothing(pgf: Pgf) -> None:
    _registered(pgf)
    pgf.rejected("record", "vitals", "S001", "--date", "2025-02-25", contains="needs at least one value")
    pgf.rejected("record", "vitals", "S001", "--date", "2025-02-25", "--temperature", "51",
                 contains="out of range 30–45 °C")
    pgf.rejected("record", "vitals", "S001", "--date", "2025-02-25", "--systolic", "120",
                 contains="both --systolic and --diastolic")
    pgf.rejected("record", "vitals", "S001", "--date", "2025-02-25", "--systolic", "80", "--diastolic", "90",
                 contains="must be below --systolic")
    pgf.rejected("record", "vitals", "S001", "--date", "2025-02-25", "--pulse", "fast", contains="must be a number")


def test_vitals_import_like_any_kind(pgf: Pgf) -> None:
    _registered(pgf)
    line = {"record": "vitals", "subject": "S001", "date": "2025-02-26", "temperature": 37.1, "spo2": 98}
    pgf.ok("import", "-", input=json.dumps(line) + "\n")
    assert "S001#2" in pgf.ok("history", "S001").stdout


def test_vitals_reach_odm_and_sdtm_vs(pgf: Pgf, tmp_path: Path) -> None:
    _registered(pgf)
    pgf.ok("record", "vitals", "S001", *VITALS)
    odm = tmp_path / "trial.xml"
    pgf.ok("export", "odm", str(odm))
    xml = odm.read_text()
    assert 'StudyEventOID="SE.VITALS"' in xml and 'ItemOID="IT.VITALS.TEMPERATURE"' in xml
    assert 'MeasurementUnitOID="MU.DEGC"' in xml
    out = tmp_path / "sdtm"
    pgf.ok("export", "sdtm", str(out))
    vs = json.loads((out / "vs.json").read_text())
    names = [c["name"] for c in vs["columns"]]
    rows = [dict(zip(names, row, strict=True)) for row in vs["rows"]]
    by_test = {r["VSTESTCD"]: r for r in rows}
    assert {"TEMP", "PULSE", "SYSBP", "DIABP", "OXYSAT", "WEIGHT"} <= set(by_test)
    assert by_test["TEMP"]["VSSTRESN"] == 38.4 and by_test["TEMP"]["VSSTRESU"] == "C"
    assert by_test["SYSBP"]["VSSPID"] == "S001#2"
    assert csv  # (the CSV form is covered by the export tests)
