"""ODM 1.3.2 that other systems load: the XSD, odmlib's model and OID reference checks, one-to-one
OIDs for adversarial names, transaction types as the standard defines them, decimals, signatures
with IDs, CodeLists, Questions, users with roles, --snapshot and --as-of."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.odm import write_odm
from pgf_events.audit.odm_meta import decimal_text, site_oid, user_oid
from tests.conftest import Pgf, enrol_via_cli
from tests.exports.conftest import rich_scenario
from tests.helpers import USER, enrolled, register, sign

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
ADVERSARIAL = ("j smith", "j_smith", "张伟", "王芳", "j_20_smith", "J SMITH")


@pytest.fixture(scope="module")
def schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    odmlib = pytest.importorskip("odmlib")
    return xmlschema.XMLSchema(os.path.join(os.path.dirname(odmlib.__file__), "schemas", "odm", "1.3.2",
                                            "ODM1-3-2.xsd"))


def export(app: TrialConduct, **kw: Any) -> tuple[str, ET.Element]:
    out = io.StringIO()
    write_odm(app, out, **kw)
    return out.getvalue(), ET.fromstring(out.getvalue().encode())


def odmlib_checks(text: str) -> Any:
    """Load with odmlib's ODM 1.3.2 model and run its OID uniqueness and Def/Ref checks."""
    from odmlib.loader import ODMLoader
    from odmlib.odm_loader import XMLODMLoader
    from odmlib.oid_generator import create_oid_checker
    loader = ODMLoader(XMLODMLoader(model_package="odm_1_3_2", ns_uri=NS["odm"]))
    loader.load_odm_string(text)
    root = loader.root()
    checker = create_oid_checker("odm_1_3_2")
    assert root.verify_oids(checker) is True
    return root


def adversarial_store(app: TrialConduct) -> None:
    for n, name in enumerate(ADVERSARIAL):
        register(app, f"S{n:03d}", site=name)
        app.record("lab", f"S{n:03d}", {"date": "2025-03-01", "anc": 0.00001}, user=name)
    sign(app, "S000", "review", user="j smith")


def test_adversarial_names_get_one_to_one_oids_and_keep_their_names(app: TrialConduct, schema: Any) -> None:
    adversarial_store(app)
    text, root = export(app)
    schema.validate(io.StringIO(text))
    odmlib_checks(text)
    admin = root.find("odm:AdminData", NS)
    users = {u.get("OID"): u.find("odm:LoginName", NS).text for u in admin.findall("odm:User", NS)}  # type: ignore[union-attr]
    assert set(ADVERSARIAL) <= set(users.values()) and len(users) == len(set(users))
    assert {user_oid(n) for n in ADVERSARIAL} <= set(users) and len({user_oid(n) for n in ADVERSARIAL}) == 6
    sites = {loc.get("OID"): loc.get("Name") for loc in admin.findall("odm:Location", NS)}  # type: ignore[union-attr]
    assert sorted(sites.values()) == sorted(ADVERSARIAL) and {site_oid(n) for n in ADVERSARIAL} == set(sites)
    assert user_oid("j smith") != user_oid("j_smith") != user_oid("j_20_smith")


def test_decimals_have_no_exponent() -> None:
    assert [decimal_text(x) for x in (1e-05, 6.1e7, 0.6, 1e21, 72.0)] == [
        "0.00001", "61000000", "0.6", "1000000000000000000000", "72"]


def test_items_are_inserted_before_they_are_updated(app: TrialConduct, schema: Any) -> None:
    rich_scenario(app)
    app.record("lab", "S003", {"date": "2025-03-05", "anc": 0.5}, user=USER)
    ref = app.record("lab", "S003", {"date": "2025-03-06", "anc": 0.7}, user=USER).ref
    app.correct(ref, {"plt": "20", "anc": "0.8"}, "second value found", user=USER)
    text, root = export(app)
    schema.validate(io.StringIO(text))
    inserted: set[tuple[str, str, str]] = set()
    removed: set[tuple[str, str]] = set()
    for subject in root.iter(f"{ODM}SubjectData"):
        key = subject.get("SubjectKey")
        for event in subject.iter(f"{ODM}StudyEventData"):
            repeat = f"{key}/{event.get('StudyEventOID')}/{event.get('StudyEventRepeatKey')}"
            if event.get("TransactionType") == "Remove":
                removed.add((key, repeat))
                continue
            for item in event.iter(f"{ODM}ItemData"):
                tx, oid = item.get("TransactionType"), item.get("ItemOID")
                if tx == "Insert":
                    inserted.add((key, repeat, oid))
                else:  # an Update or Remove of an item needs that item inserted earlier
                    assert (key, repeat, oid) in inserted, (tx, repeat, oid)
    fix = [s for s in root.iter(f"{ODM}SubjectData") if any(
        i.get("TransactionType") == "Update" for i in s.iter(f"{ODM}ItemData")) and s.get("SubjectKey") == "S003"][-1]
    assert {(i.get("ItemOID"), i.get("TransactionType"), i.get("Value")) for i in fix.iter(f"{ODM}ItemData")} == {
        ("IT.LAB.PLT", "Insert", "20"), ("IT.LAB.ANC", "Update", "0.8")}


def test_signatures_codelists_questions_and_roles(app: TrialConduct, schema: Any) -> None:
    app.change_role("grant", "admin1", "admin", by="admin1")
    app.change_role("grant", "dr.li", "investigator", by="admin1")
    enrolled(app, "S001")
    sign(app, "S001", "review", user="dr.li")
    text, root = export(app)
    schema.validate(io.StringIO(text))
    loaded = odmlib_checks(text)
    signature = root.find(".//odm:Signature", NS)
    assert signature is not None and signature.get("ID") == "SIG.S001.5"
    assert loaded.ClinicalData[0].SubjectData[-1].Signature.ID == "SIG.S001.5"
    manifest = signature.find("odm:CryptoBindingManifest", NS)
    assert manifest is not None and "Ed25519 signature by key" in (manifest.text or "")
    mdv = root.find("odm:Study/odm:MetaDataVersion", NS)
    for item in mdv.findall("odm:ItemDef", NS):  # type: ignore[union-attr]
        assert item.find("odm:Question/odm:TranslatedText", NS).text, item.get("OID")  # type: ignore[union-attr]
    sex = mdv.find("odm:ItemDef[@OID='IT.REGISTER.SEX']/odm:CodeListRef", NS)  # type: ignore[union-attr]
    codelist = mdv.find(f"odm:CodeList[@OID='{sex.get('CodeListOID')}']", NS)  # type: ignore[union-attr]
    assert [e.get("CodedValue") for e in codelist.findall("odm:EnumeratedItem", NS)] == ["M", "F"]  # type: ignore[union-attr]
    for oid in ("IT.TRANSFUSION.PRODUCT", "IT.ENROL.PGF_TYPE", "IT.AE.RELATED", "IT.CONTACT.DISEASE", "IT.AE.OUTCOME",
                "IT.AE.ACTION"):
        assert mdv.find(f"odm:ItemDef[@OID='{oid}']/odm:CodeListRef", NS) is not None, oid  # type: ignore[union-attr]
    users = {u.find("odm:LoginName", NS).text: (u.get("UserType"), u.find("odm:Organization", NS).text)  # type: ignore[union-attr]
             for u in root.findall("odm:AdminData/odm:User", NS)}
    assert users["dr.li"] == ("Investigator", "roles: investigator")
    assert users["admin1"] == ("Other", "roles: admin")


def test_snapshot_has_current_values_one_subject_each(app: TrialConduct, schema: Any) -> None:
    rich_scenario(app)
    text, root = export(app, snapshot=True)
    schema.validate(io.StringIO(text))
    odmlib_checks(text)
    assert root.get("FileType") == "Snapshot"
    subjects = root.findall("odm:ClinicalData/odm:SubjectData", NS)
    assert [s.get("SubjectKey") for s in subjects] == ["S001", "S002", "S003", "S004"]
    assert all(e.get("TransactionType") is None for e in root.iter() if e.tag.startswith(ODM))
    s1 = subjects[0]
    labs = [e for e in s1.findall("odm:StudyEventData", NS) if e.get("StudyEventOID") == "SE.LAB"]
    assert [e.get("StudyEventRepeatKey") for e in labs] == ["8"]  # S001#10 was voided
    anc = labs[0].find(".//odm:ItemData[@ItemOID='IT.LAB.ANC']", NS)
    assert anc is not None and anc.get("Value") == "0.6"  # the corrected value
    infusion = [e for e in s1.findall("odm:StudyEventData", NS) if e.get("StudyEventOID") == "SE.INFUSION"]
    cells = infusion[0].find(".//odm:ItemData[@ItemOID='IT.INFUSION.CELLS']", NS)
    assert cells is not None and cells.get("Value") == "61000000"  # the voided recount is not applied


def test_cli_snapshot_and_as_of(pgf: Pgf, tmp_path: Path, schema: Any) -> None:
    enrol_via_cli(pgf)
    pgf.ok("export", "odm", str(tmp_path / "now.xml"), "--snapshot")
    schema.validate(str(tmp_path / "now.xml"))
    pgf.ok("export", "odm", str(tmp_path / "old.xml"), "--snapshot", "--as-of", "2000-01-01")
    root = ET.parse(tmp_path / "old.xml").getroot()
    assert root.findall("odm:ClinicalData/odm:SubjectData", NS) == []
    pgf.rejected("export", "odm", str(tmp_path / "x.xml"), "--as-of", "nonsense", contains="as")


def test_audit_trail_cells_are_spreadsheet_safe_and_name_the_role(app: TrialConduct, tmp_path: Path) -> None:
    import csv

    from pgf_events.audit.trail import write_trail
    app.change_role("grant", "admin1", "admin", by="admin1")
    app.change_role("grant", USER, "coordinator", by="admin1")
    register(app, "S001")
    app.record("ae", "S001", {"onset": "2025-03-01", "term": "=HYPERLINK(\"http://x\")", "grade": 1}, user=USER)
    out = io.StringIO()
    write_trail(app, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    term = next(r for r in rows if r["field"] == "term")
    assert term["new_value"].startswith("'=") and term["role"] == "coordinator"
