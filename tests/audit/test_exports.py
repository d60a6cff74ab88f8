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
from pgf_events.audit.sdtm import DATASETS, write_sdtm
from pgf_events.audit.signatures import sign
from pgf_events.audit.trail import trail_rows
from tests.conftest import Pgf, enrol_via_cli
from tests.helpers import USER, enrolled, infuse, register

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


def test_the_audit_trail_has_one_row_per_event_with_every_field(app: TrialConduct) -> None:
    scenario(app)
    rows = {r["ref"]: r for r in trail_rows(app)}
    assert len(rows) == 15 + 3
    lab = rows["S001#8"]
    assert (lab["type"], lab["kind"], lab["clinical_date"], lab["user"], lab["source"], lab["site"]) == (
        "LabResulted", "lab", "2025-03-01", USER, "LIS report 123", "PKU")
    assert lab["recorded_utc"].endswith("Z") and lab["status"] == "corrected by S001#9"
    fix = rows["S001#9"]
    assert (fix["kind"], fix["supersedes"], fix["reason"], fix["user"]) == (
        "correct", "S001#8", "transcription error", "monitor1")
    assert fix["old_to_new"] == "anc: 0.4 -> 0.6" and fix["clinical_date"] == "2025-03-01"
    void = rows["S001#11"]
    assert (void["kind"], void["supersedes"], void["reason"]) == ("void", "S001#10", "duplicate entry")
    assert "voids S001#10 (lab: date=2025-03-02, anc=0.5)" in void["what"]
    assert rows["S001#10"]["status"] == "voided by S001#11"
    assert rows["S001#15"]["type"] == "Signed" and rows["S001#15"]["user"] == "dr.li"
    assert rows["S002#1"]["site"] == "RJH"


def test_the_audit_trail_as_of_ignores_later_events(app: TrialConduct) -> None:
    marks = scenario(app)
    rows = list(trail_rows(app, as_of=marks["lab"].recorded_at))
    assert [r["ref"] for r in rows][-1] == "S001#8"
    assert rows[-1]["status"] == ""  # the correction came later


# -------------------------------------------------------------------------------------------- SDTM


def sdtm(app: TrialConduct, tmp_path: Path, **kw: Any) -> dict[str, list[dict[str, str]]]:
    write_sdtm(app, tmp_path, **kw)
    out = {}
    for name, columns in DATASETS.items():
        with open(tmp_path / f"{name.lower()}.csv", newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == columns
            out[name] = list(reader)
    return out


def test_sdtm_applies_corrections_and_leaves_voided_records_out(app: TrialConduct, tmp_path: Path) -> None:
    scenario(app)
    ds = sdtm(app, tmp_path)
    lb = [r for r in ds["LB"] if r["USUBJID"] == "NCT06171906-S001"]
    assert [(r["LBTESTCD"], r["LBORRES"], r["LBORRESU"], r["LBSTRESN"], r["LBSTRESU"]) for r in lb] == [
        ("NEUT", "0.6", "10^9/L", "0.6", "10^9/L"), ("PLAT", "18", "10^9/L", "18", "10^9/L"),
        ("HGB", "72", "g/L", "72", "g/L")]
    assert {r["LBSPID"] for r in lb} == {"S001#8"} and {r["LBDTC"] for r in lb} == {"2025-03-01"}
    assert [r["LBSEQ"] for r in lb] == ["1", "2", "3"] and {r["LBDY"] for r in lb} == {"5"}
    assert {r["LBCAT"] for r in lb} == {"HEMATOLOGY"} and {r["DOMAIN"] for r in lb} == {"LB"}
    ex = ds["EX"]
    assert len(ex) == 1
    assert (ex[0]["EXSPID"], ex[0]["EXDOSE"], ex[0]["EXDOSU"], ex[0]["EXSTDTC"], ex[0]["EXSTDY"], ex[0]["EXROUTE"]) == (
        "S001#5", "1", "10^6 cells/kg", "2025-02-25", "1", "INTRAVENOUS")  # the voided recount is not applied


def test_sdtm_dm(app: TrialConduct, tmp_path: Path) -> None:
    scenario(app)
    dm = {r["SUBJID"]: r for r in sdtm(app, tmp_path)["DM"]}
    s1 = dm["S001"]
    assert (s1["STUDYID"], s1["DOMAIN"], s1["USUBJID"], s1["SITEID"], s1["SEX"], s1["BRTHDTC"]) == (
        "NCT06171906", "DM", "NCT06171906-S001", "PKU", "F", "1980-02-03")
    assert (s1["RFSTDTC"], s1["RFENDTC"], s1["RFXSTDTC"], s1["RFICDTC"], s1["RFPENDTC"]) == (
        "2025-02-25", "2025-02-25", "2025-02-25", "2025-02-18", "2025-04-01")
    assert (s1["DTHDTC"], s1["DTHFL"], s1["AGE"], s1["AGEU"]) == ("2025-04-01", "Y", "45", "YEARS")
    assert (s1["ARMCD"], s1["ACTARMCD"]) == ("MSC", "MSC")
    s2 = dm["S002"]
    assert (s2["ARMCD"], s2["ARM"], s2["ACTARMCD"], s2["RFSTDTC"], s2["DTHFL"], s2["SITEID"]) == (
        "SCRNFAIL", "Screen Failure", "SCRNFAIL", "", "", "RJH")


def test_sdtm_ie_lists_only_criteria_not_met(app: TrialConduct, tmp_path: Path) -> None:
    scenario(app)
    ie = sdtm(app, tmp_path)["IE"]
    assert [(r["USUBJID"], r["IETESTCD"], r["IECAT"], r["IEORRES"], r["IESTRESC"], r["IEDTC"], r["IESPID"])
            for r in ie] == [("NCT06171906-S002", "EX6", "EXCLUSION", "Y", "Y", "2025-02-20", "S002#3")]
    assert ie[0]["IETEST"] == "Uncontrolled active infection" and ie[0]["IESEQ"] == "1"


def test_sdtm_ae_pr_ds_dd(app: TrialConduct, tmp_path: Path) -> None:
    scenario(app)
    ds = sdtm(app, tmp_path)
    (ae,) = ds["AE"]
    assert (ae["AESPID"], ae["AETERM"], ae["AEDECOD"], ae["AESTDTC"], ae["AEENDTC"], ae["AESTDY"], ae["AETOXGR"]) == (
        "S001#13", "febrile neutropenia", "FEBRILE NEUTROPENIA", "2025-03-04", "2025-03-10", "8", "3")
    assert (ae["AESER"], ae["AESHOSP"], ae["AESDTH"], ae["AESLIFE"], ae["AESDISAB"], ae["AESCONG"], ae["AESMIE"]) == (
        "Y", "Y", "N", "N", "N", "N", "N")
    assert (ae["AEREL"], ae["AEOUT"], ae["AECAT"]) == ("POSSIBLY RELATED", "RECOVERED/RESOLVED", "ADVERSE EVENT")
    (pr,) = ds["PR"]
    assert (pr["PRSPID"], pr["PRTRT"], pr["PRCAT"], pr["PRDOSE"], pr["PRDOSU"], pr["PRSTDTC"], pr["PRSTDY"]) == (
        "S001#12", "RED BLOOD CELL TRANSFUSION", "TRANSFUSION", "2", "UNIT", "2025-03-03", "7")
    s1 = [(r["DSDECOD"], r["DSCAT"], r["DSSTDTC"], r["DSSPID"]) for r in ds["DS"] if r["USUBJID"].endswith("S001")]
    assert s1 == [("INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", "2025-02-18", "S001#2"),
                  ("ENROLLED", "PROTOCOL MILESTONE", "2025-02-24", "S001#4"),
                  ("DEATH", "DISPOSITION EVENT", "2025-04-01", "S001#14")]
    s2 = [(r["DSDECOD"], r["DSSTDTC"]) for r in ds["DS"] if r["USUBJID"].endswith("S002")]
    assert s2 == [("INFORMED CONSENT OBTAINED", "2025-02-18"), ("SCREEN FAILURE", "2025-02-20")]
    (dd,) = ds["DD"]
    assert (dd["DDTESTCD"], dd["DDTEST"], dd["DDORRES"], dd["DDSTRESC"], dd["DDDTC"], dd["DDSPID"]) == (
        "PRCDTH", "Primary Cause of Death", "sepsis", "SEPSIS", "2025-04-01", "S001#14")


def test_sdtm_as_of_shows_the_value_before_its_correction(app: TrialConduct, tmp_path: Path) -> None:
    marks = scenario(app)
    lb = sdtm(app, tmp_path, as_of=marks["lab"].recorded_at)["LB"]
    assert [(r["LBTESTCD"], r["LBORRES"]) for r in lb] == [("NEUT", "0.4"), ("PLAT", "18"), ("HGB", "72")]


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
    return root.findall(f"odm:ClinicalData/odm:SubjectData[@SubjectKey='{subject}']", NS)


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
    items = list(void.iter(f"{{{NS['odm']}}}ItemData"))
    assert {(i.get("ItemOID"), i.get("TransactionType"), i.get("Value")) for i in items} == {
        ("IT.LAB.DATE", "Remove", None), ("IT.LAB.ANC", "Remove", None)}
    assert {audit(i)["reason"] for i in items} == {"duplicate entry"}
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
    assert users == {f"USR.{USER}": USER, "USR.monitor1": "monitor1", "USR.dr.li": "dr.li"}
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
    assert [r["ref"] for r in rows] == [f"S001#{n}" for n in range(1, 7)]
    pgf.ok("export", "odm", str(tmp_path / "trial.xml"), "--as-of", "2100-01-01")
    odm_schema.validate(str(tmp_path / "trial.xml"))
    pgf.ok("export", "sdtm", str(tmp_path / "sdtm"))
    assert sorted(p.name for p in (tmp_path / "sdtm").iterdir()) == sorted(f"{n.lower()}.csv" for n in DATASETS)
    assert pgf("export", "odm", str(tmp_path / "nowhere" / "x.xml")).exit_code == 2
    pgf.rejected("export", "sdtm", str(tmp_path / "x"), "--as-of", "yesterday", contains="as")
