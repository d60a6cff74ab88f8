"""Exports checked field by field: audit trail CSV, CDISC ODM 1.3.2 (against the XSD), SDTM datasets."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.odm import write_odm
from pgf_events.audit.trail import trail_rows
from pgf_events.exports.sdtm import DATASETS
from tests.conftest import Pgf, enrol_via_cli
from tests.helpers import USER, enrolled, infuse, register, sign

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


def scenario(app: TrialConduct) -> dict[str, Any]:
    """S001 treated, corrected, voided, transfused, an SAE, died, signed; S002 a screen failure."""
    enrolled(app, "S001")  # 1-4
    infuse(app, "S001", "2025-02-25")  # 5
    app.correct("S001#5", {"cells": "6.3e7"}, "pharmacy recount", user=USER)  # 6
    app.void("S001#6", "the recount was of another bag", user=USER)  # 7
    lab = app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.4, "plt": 18, "hb": 72}, user=USER,
                     source="LIS report 123")  # 8
    app.correct("S001#8", {"anc": "0.6"}, "transcription error", user="monitor1")  # 9
    app.record("lab", "S001", {"date": "2025-03-02", "anc": 0.5}, user=USER)  # 10
    app.void("S001#10", "duplicate entry", user=USER)  # 11
    app.record("transfusion", "S001", {"date": "2025-03-03", "product": "rbc", "units": 2}, user=USER)  # 12
    app.record("ae", "S001", {"onset": "2025-03-04", "term": "febrile neutropenia", "grade": 3,
                              "serious": "hospitalisation", "related": "possible", "end": "2025-03-10",
                              "outcome": "recovered"}, user=USER)  # 13
    app.record("death", "S001", {"date": "2025-04-01", "cause": "sepsis"}, user=USER)  # 14
    signature = sign(app, "S001", "review", user="dr.li")  # 15
    register(app, "S002", site="RJH")
    app.record("consent", "S002", {"date": "2025-02-18"}, user=USER)
    app.record("screen", "S002", {"date": "2025-02-20", "kps": 80, "expected_survival_months": 12,
                                  "criterion": {"IN1": "yes", "EX6": "yes"}}, user=USER)
    return {"lab": lab, "signature": signature}


# ------------------------------------------------------------------------------------ audit trail


def test_the_audit_trail_has_one_row_per_changed_field(app: TrialConduct) -> None:
    scenario(app)
    rows = list(trail_rows(app))
    assert len({r["ref"] for r in rows}) == 15 + 3  # every event has at least one row
    lab = {r["field"]: r for r in rows if r["ref"] == "S001#8"}
    assert set(lab) == {"date", "anc", "plt", "hb", "hb_as_entered"}  # the fields it gives (and Hb as entered)
    anc = lab["anc"]
    assert (anc["type"], anc["kind"], anc["clinical_date"], anc["user"], anc["source"], anc["site"]) == (
        "LabResulted", "lab", "2025-03-01", USER, "LIS report 123", "PKU")
    assert (anc["old_value"], anc["new_value"], anc["role"]) == ("", "0.4", "")  # an open store: no roles
    assert anc["recorded_utc"].endswith("Z") and anc["status"] == "corrected by S001#9"
    (fix,) = [r for r in rows if r["ref"] == "S001#9"]
    assert (fix["kind"], fix["record"], fix["field"], fix["old_value"], fix["new_value"], fix["reason"],
            fix["user"], fix["clinical_date"]) == (
        "correct", "S001#8", "anc", "0.4", "0.6", "transcription error", "monitor1", "2025-03-01")
    void = {r["field"]: r for r in rows if r["ref"] == "S001#11"}
    assert {f: (r["old_value"], r["new_value"]) for f, r in void.items()} == {
        "date": ("2025-03-02", ""), "anc": ("0.5", "")}
    assert {r["reason"] for r in void.values()} == {"duplicate entry"}
    (undo,) = [r for r in rows if r["ref"] == "S001#7"]  # voiding a correction restores the earlier value
    assert (undo["record"], undo["field"], undo["old_value"], undo["new_value"]) == (
        "S001#5", "cells", "63000000", "61000000")
    (signed,) = [r for r in rows if r["ref"] == "S001#15"]
    assert signed["type"] == "Signed" and signed["user"] == "dr.li" and "review of S001#1..#14" in signed["new_value"]
    assert {r["site"] for r in rows if r["subject"] == "S002"} == {"RJH"}


def test_the_audit_trail_as_of_ignores_later_events(app: TrialConduct) -> None:
    marks = scenario(app)
    rows = list(trail_rows(app, as_of=marks["lab"].recorded_at))
    assert [r["ref"] for r in rows][-1] == "S001#8"
    assert rows[-1]["status"] == ""  # the correction came later


# -------------------------------------------------------------------------------------------- SDTM


# SDTM: tests/exports/test_sdtm.py


# --------------------------------------------------------------------------------------------- ODM


@pytest.fixture(scope="module")
def odm_schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    odmlib = pytest.importorskip("odmlib")
    path = os.path.join(os.path.dirname(odmlib.__file__), "schemas", "odm", "1.3.2", "ODM1-3-2.xsd")
    return xmlschema.XMLSchema(path)


def odm(app: TrialConduct, **kw: Any) -> tuple[str, ET.Element]:
    out = io.StringIO()
    write_odm(app, out, **kw)
    return out.getvalue(), ET.fromstring(out.getvalue().encode())


def transactions(root: ET.Element, subject: str) -> list[ET.Element]:
    """The subject's clinical transactions (monitoring Annotations, e.g. automatic queries, left out)."""
    return [s for s in root.findall(f"odm:ClinicalData/odm:SubjectData[@SubjectKey='{subject}']", NS)
            if s.find(".//odm:Annotation", NS) is None]


def audit(element: ET.Element) -> dict[str, str | None]:
    record = element.find("odm:AuditRecord", NS)
    assert record is not None
    reason = record.find("odm:ReasonForChange", NS)
    return {
        "user": record.find("odm:UserRef", NS).get("UserOID"),  # type: ignore[union-attr]
        "location": record.find("odm:LocationRef", NS).get("LocationOID"),  # type: ignore[union-attr]
        "time": record.find("odm:DateTimeStamp", NS).text,  # type: ignore[union-attr]
        "reason": reason.text if reason is not None else None,
        "source": record.find("odm:SourceID", NS).text,  # type: ignore[union-attr]
    }


def test_odm_validates_against_the_odm_1_3_2_schema(app: TrialConduct, odm_schema: Any) -> None:
    scenario(app)
    text, root = odm(app)
    odm_schema.validate(io.StringIO(text))
    assert root.get("FileType") == "Transactional" and root.get("ODMVersion") == "1.3.2"


def test_odm_keeps_every_transaction(app: TrialConduct) -> None:
    scenario(app)
    _, root = odm(app)
    assert len(transactions(root, "S001")) == 15 and len(transactions(root, "S002")) == 3
    first = transactions(root, "S001")[0]
    assert first.get("TransactionType") == "Insert"
    assert first.find("odm:SiteRef", NS).get("LocationOID") == "LOC.PKU"  # type: ignore[union-attr]


def test_odm_insert_items_carry_their_audit_record(app: TrialConduct) -> None:
    scenario(app)
    _, root = odm(app)
    lab = transactions(root, "S001")[7]  # S001#8
    event = lab.find("odm:StudyEventData", NS)
    assert (event.get("StudyEventOID"), event.get("StudyEventRepeatKey"), event.get("TransactionType")) == (  # type: ignore[union-attr]
        "SE.LAB", "8", "Insert")
    items = {i.get("ItemOID"): i for i in lab.iter(f"{{{NS['odm']}}}ItemData")}
    assert {oid: i.get("Value") for oid, i in items.items()} == {
        "IT.LAB.DATE": "2025-03-01", "IT.LAB.ANC": "0.4", "IT.LAB.PLT": "18", "IT.LAB.HB": "72",
        "IT.LAB.HB_AS_ENTERED": "72 g/L"}  # v2: the value as entered travels beside the standardised one
    assert {i.get("TransactionType") for i in items.values()} == {"Insert"}
    record = audit(items["IT.LAB.ANC"])
    assert record["user"] == f"USR.{USER}" and record["location"] == "LOC.PKU"
    assert record["reason"] is None and record["source"] == "S001#8 | LIS report 123"
    assert record["time"] is not None and record["time"].endswith("Z")


def test_odm_correction_is_an_update_with_its_reason(app: TrialConduct) -> None:
    scenario(app)
    _, root = odm(app)
    fix = transactions(root, "S001")[8]  # S001#9
    event = fix.find("odm:StudyEventData", NS)
    assert (event.get("StudyEventOID"), event.get("StudyEventRepeatKey"), event.get("TransactionType")) == (  # type: ignore[union-attr]
        "SE.LAB", "8", "Context")
    (item,) = list(fix.iter(f"{{{NS['odm']}}}ItemData"))
    assert (item.get("ItemOID"), item.get("Value"), item.get("TransactionType")) == ("IT.LAB.ANC", "0.6", "Update")
    assert audit(item)["reason"] == "transcription error" and audit(item)["user"] == "USR.monitor1"
    assert audit(item)["source"] == "S001#9"


def test_odm_void_is_a_remove_and_voiding_a_correction_updates_back(app: TrialConduct) -> None:
    scenario(app)
    _, root = odm(app)
    void = transactions(root, "S001")[10]  # S001#11 voids S001#10
    event = void.find("odm:StudyEventData", NS)
    assert (event.get("StudyEventRepeatKey"), event.get("TransactionType")) == ("10", "Remove")  # type: ignore[union-attr]
    assert list(void.iter(f"{{{NS['odm']}}}ItemData")) == []  # the whole repeat is removed, not item by item
    assert audit(event)["reason"] == "duplicate entry" and audit(event)["source"] == "S001#11"  # type: ignore[arg-type]
    recount, undo = transactions(root, "S001")[5:7]  # S001#6 corrects S001#5; S001#7 voids S001#6
    (up,) = list(recount.iter(f"{{{NS['odm']}}}ItemData"))
    (back,) = list(undo.iter(f"{{{NS['odm']}}}ItemData"))
    assert (up.get("ItemOID"), up.get("Value"), up.get("TransactionType")) == ("IT.INFUSION.CELLS", "63000000", "Update")
    assert (back.get("ItemOID"), back.get("Value"), back.get("TransactionType")) == (
        "IT.INFUSION.CELLS", "61000000", "Update")
    assert audit(back)["reason"] == "the recount was of another bag"


def test_odm_signature_admin_data_and_metadata(app: TrialConduct) -> None:
    marks = scenario(app)
    _, root = odm(app)
    signed = transactions(root, "S001")[14]
    signature = signed.find("odm:Signature", NS)
    assert signature.find("odm:UserRef", NS).get("UserOID") == "USR.dr.li"  # type: ignore[union-attr]
    assert signature.find("odm:SignatureRef", NS).get("SignatureOID") == "SD.REVIEW"  # type: ignore[union-attr]
    manifest = signature.find("odm:CryptoBindingManifest", NS).text  # type: ignore[union-attr]
    assert marks["signature"]["stream_hash"] in manifest and "S001#1..#14" in manifest  # type: ignore[operator]
    admin = root.find("odm:AdminData", NS)
    users = {u.get("OID"): u.find("odm:LoginName", NS).text for u in admin.findall("odm:User", NS)}  # type: ignore[union-attr]
    assert users == {f"USR.{USER}": USER, "USR.monitor1": "monitor1", "USR.dr.li": "dr.li",
                     "USR.pgf-edit-check": "pgf-edit-check"}  # the SAE without awareness time raised a query
    assert {loc.get("Name") for loc in admin.findall("odm:Location", NS)} == {"PKU", "RJH"}  # type: ignore[union-attr]
    assert {d.get("OID") for d in admin.findall("odm:SignatureDef", NS)} == {"SD.REVIEW", "SD.APPROVAL"}  # type: ignore[union-attr]
    mdv = root.find("odm:Study/odm:MetaDataVersion", NS)
    anc = mdv.find("odm:ItemDef[@OID='IT.LAB.ANC']", NS)  # type: ignore[union-attr]
    assert anc.get("DataType") == "float"  # type: ignore[union-attr]
    assert anc.find("odm:MeasurementUnitRef", NS).get("MeasurementUnitOID") == "MU.E9PERL"  # type: ignore[union-attr]
    assert mdv.find("odm:ItemDef[@OID='IT.SCREEN.CRITERION_EX6']", NS).get("DataType") == "boolean"  # type: ignore[union-attr]


def test_odm_as_of(app: TrialConduct) -> None:
    marks = scenario(app)
    _, root = odm(app, as_of=marks["lab"].recorded_at)
    assert len(transactions(root, "S001")) == 8 and transactions(root, "S002") == []


# --------------------------------------------------------------------------------------------- CLI


def test_export_commands_write_files(pgf: Pgf, tmp_path: Path, odm_schema: Any) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4")
    pgf.ok("correct", "S001#5", "--set", "anc=0.6", "--reason", "typo")
    result = pgf.ok("export", "audit-trail", str(tmp_path / "trail.csv"))
    assert "6 events written" in result.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "trail.csv").read_text())))
    assert list(dict.fromkeys(r["ref"] for r in rows)) == [f"S001#{n}" for n in range(1, 7)]
    pgf.ok("export", "odm", str(tmp_path / "trial.xml"), "--as-of", "2100-01-01")
    odm_schema.validate(str(tmp_path / "trial.xml"))
    pgf.ok("export", "sdtm", str(tmp_path / "sdtm"))
    assert sorted(p.name for p in (tmp_path / "sdtm").iterdir()) == sorted(
        ["define.xml", *(f"{n.lower()}.{ext}" for n in DATASETS for ext in ("json", "xpt"))])
    assert pgf("export", "odm", str(tmp_path / "nowhere" / "x.xml")).exit_code == 2
    pgf.rejected("export", "sdtm", str(tmp_path / "x"), "--as-of", "yesterday", contains="as")


def test_an_acknowledged_deviation_is_in_the_odm_audit_record_and_the_trail(app: TrialConduct, odm_schema: Any) -> None:
    enrolled(app, "S001")
    infuse(app, "S001", "2025-02-25")
    infuse(app, "S001", "2025-02-28", deviation="patient travelling")
    text, root = odm(app)
    odm_schema.validate(text)
    reasons = [e.text for e in root.iter(f"{{{NS['odm']}}}ReasonForChange")]
    assert "protocol deviation acknowledged: patient travelling" in reasons
    assert {r["deviation"] for r in trail_rows(app) if r["ref"] == "S001#6"} == {"patient travelling"}
