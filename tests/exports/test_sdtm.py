"""SDTM as Dataset-JSON 1.1 and SAS XPT v5 with define.xml 2.1, checked by tools others wrote, and one
regression test per finding of issue 16 (CORE, odmlib, the XSDs)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.exports.package import write_package
from pgf_events.exports.sdtm import DATASETS, build_sdtm
from tests.conftest import Pgf
from tests.exports.conftest import rich_scenario
from tests.exports.dataset_json_schema import SCHEMA
from tests.helpers import USER, enrolled, infuse


def by_subject(rows: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["USUBJID"].endswith(subject)]


@pytest.fixture
def sdtm(app: TrialConduct) -> dict[str, list[dict[str, Any]]]:
    rich_scenario(app)
    return build_sdtm(app)[0]


def test_screen_failures_have_null_arms_with_armnrs(sdtm: Any) -> None:
    dm = {r["SUBJID"]: r for r in sdtm["DM"]}
    s2 = dm["S002"]
    assert (s2["ARMCD"], s2["ARM"], s2["ACTARMCD"], s2["ACTARM"], s2["ARMNRS"]) == (None, None, None, None,
                                                                                   "SCREEN FAILURE")
    s4 = dm["S004"]
    assert (s4["ARMCD"], s4["ACTARMCD"], s4["ARMNRS"]) == ("MSC", None, "ASSIGNED, NOT TREATED")
    assert (dm["S001"]["ARMCD"], dm["S001"]["ACTARMCD"], dm["S001"]["ARMNRS"]) == ("MSC", "MSC", None)
    assert {r["COUNTRY"] for r in sdtm["DM"]} == {"CHN"}


def test_ds_has_subcategories_and_end_of_participation(sdtm: Any) -> None:
    s1 = [(r["DSDECOD"], r["DSCAT"], r["DSSCAT"], r["EPOCH"]) for r in by_subject(sdtm["DS"], "S001")]
    assert s1[-1] == ("DEATH", "DISPOSITION EVENT", "STUDY PARTICIPATION", "FOLLOW-UP")
    s2 = [(r["DSDECOD"], r["DSSCAT"]) for r in by_subject(sdtm["DS"], "S002")]
    assert s2 == [("INFORMED CONSENT OBTAINED", None), ("SCREEN FAILURE", "STUDY PARTICIPATION")]
    s3 = [(r["DSDECOD"], r["DSSCAT"], str(r["DSSTDTC"])) for r in by_subject(sdtm["DS"], "S003")]
    assert ("COMPLETED", "STUDY TREATMENT", "2025-03-18") in s3
    assert all(scat != "STUDY PARTICIPATION" for _, scat, _ in s3)  # still in follow-up (< 365 days from D1)
    for subject in ("S001",):  # no AE starts after the end of participation
        end = max(r["DSSTDTC"] for r in by_subject(sdtm["DS"], subject) if r["DSSCAT"] == "STUDY PARTICIPATION")
        assert all(r["AESTDTC"] <= end for r in by_subject(sdtm["AE"], subject))


def test_every_subject_record_has_an_epoch_and_scheduled_records_a_visit(sdtm: Any) -> None:
    for name, ds in DATASETS.items():
        if "EPOCH" in ds.names and name not in ("TA", "MH"):
            assert all(r["EPOCH"] in ("SCREENING", "TREATMENT", "FOLLOW-UP") for r in sdtm[name]), name
        if "VISITNUM" in ds.names and name not in ("TV",):
            assert all(r["VISITNUM"] is not None and r["VISIT"] for r in sdtm[name]), name
    ex = by_subject(sdtm["EX"], "S003")
    assert [(r["VISITNUM"], r["VISIT"], r["EPOCH"]) for r in ex] == [
        (2.0, "MSC DOSE 1", "TREATMENT"), (3.0, "MSC DOSE 2", "TREATMENT"), (4.0, "MSC DOSE 3", "TREATMENT"),
        (5.0, "MSC DOSE 4", "TREATMENT")]
    sv = {(r["USUBJID"], r["VISITNUM"]) for r in sdtm["SV"]}
    assert len(sv) == len(sdtm["SV"])  # one visit per number per subject
    for name in ("LB", "PR", "VS", "RS", "XG", "EX", "IE"):
        assert {(r["USUBJID"], r["VISITNUM"]) for r in sdtm[name]} <= sv, name


def test_infections_in_ae_have_seriousness_causality_outcome_and_their_organism_in_mb(sdtm: Any) -> None:
    infections = [r for r in sdtm["AE"] if r["AECAT"] == "INFECTION"]
    assert len(infections) == 2
    for r in infections:
        assert r["AESER"] == "N" and r["AEREL"] == "NOT ASSESSED" and r["AEOUT"] == "UNKNOWN" and r["AEACN"]
    (mb,) = sdtm["MB"]
    assert (mb["MBTESTCD"], mb["MBORRES"], mb["MBLOC"], mb["MBSPID"]) == ("MICROORG", "Aspergillus", "LUNG",
                                                                            infections[0]["AESPID"])
    related = {(r["RDOMAIN"], r["IDVARVAL"]) for r in sdtm["RELREC"] if r["USUBJID"].endswith("S003")}
    assert related == {("AE", str(infections[0]["AESEQ"])), ("MB", str(mb["MBSEQ"]))}


def test_ae_outcomes_are_cdisc_terms(sdtm: Any) -> None:
    outcomes = {r["AETERM"]: r["AEOUT"] for r in sdtm["AE"] if r["AECAT"] == "ADVERSE EVENT"}
    assert outcomes == {"febrile neutropenia": "RECOVERED/RESOLVED", "rash": "RECOVERING/RESOLVING"}


def test_lb_ranges_indicator_baseline_and_values_as_entered(sdtm: Any) -> None:
    lb = by_subject(sdtm["LB"], "S003")
    hgb = next(r for r in lb if r["LBTESTCD"] == "HGB")
    assert (hgb["LBORRES"], hgb["LBORRESU"], hgb["LBSTRESN"], hgb["LBSTRESU"]) == (
        "7.2", "g/dL", 72.0, "g/L")  # as entered: the record keeps the text (issue 14)
    assert (hgb["LBSTNRLO"], hgb["LBSTNRHI"], hgb["LBNRIND"]) == (115, 150, "LOW")  # the female range
    assert {r["LBLOBXFL"] for r in lb} == {"Y"}  # the only labs, taken the day before D1
    neut = next(r for r in lb if r["LBTESTCD"] == "NEUT")
    assert (neut["LBORNRLO"], neut["LBORNRHI"], neut["LBNRIND"]) == ("1.8", "6.3", "LOW")


def test_units_are_cdisc_terms_and_the_extension_is_declared(sdtm: Any, tmp_path: Path) -> None:
    assert {r["PRDOSU"] for r in sdtm["PR"]} == {"U"}
    assert {r["EXDOSU"] for r in sdtm["EX"]} == {"10^6 cells/kg"}
    write_package(tmp_path, DATASETS, sdtm, trial="NCT06171906", standard="SDTMIG")
    define = (tmp_path / "define.xml").read_text()
    assert '<EnumeratedItem CodedValue="10^6 cells/kg" def:ExtendedValue="Yes"' in define


def test_collected_data_has_a_home(sdtm: Any) -> None:
    assert {r["MHCAT"] for r in by_subject(sdtm["MH"], "S003")} == {"TRANSPLANT HISTORY", "POOR GRAFT FUNCTION"}
    assert {(r["VSTESTCD"], r["VSORRESU"]) for r in sdtm["VS"]} == {("WEIGHT", "kg")}
    assert {(r["RSTESTCD"], r["RSORRES"]) for r in by_subject(sdtm["RS"], "S003")} == {
        ("KPS0101", "80"), ("DISSTAT", "RELAPSE")}
    xg = {(r["XGCAT"], r["XGTESTCD"], r["XGORRES"]) for r in sdtm["XG"]}
    assert {("ACUTE GVHD", "SKINBSA", "30"), ("ACUTE GVHD", "UGI", "N"), ("CHRONIC GVHD", "MOUTHSC", "2")} <= xg
    assert DATASETS["XG"].custom


def test_trial_design_datasets(sdtm: Any) -> None:
    ts = {r["TSPARMCD"]: r["TSVAL"] for r in sdtm["TS"]}
    assert (ts["SDTIGVER"], ts["COUNTRY"], ts["PLANSUB"], ts["ACTSUB"]) == ("3.4", "CHN", "68", "3")
    assert [r["ETCD"] for r in sdtm["TA"]] == ["SCRN", "MSC", "FU"] and len(sdtm["TE"]) == 3
    assert [r["VISITNUM"] for r in sdtm["TV"]] == [1.0, 2.0, 3.0, 4.0, 5.0] and len(sdtm["TI"]) == 14
    assert {r["ETCD"] for r in by_subject(sdtm["SE"], "S003")} == {"SCRN", "MSC", "FU"}


def test_xpt_values_are_ascii(app: TrialConduct, tmp_path: Path) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    enrolled(app, "S009")
    infuse(app, "S009", "2025-02-25")
    app.record("ae", "S009", {"onset": "2025-03-01", "term": "µ-rash – 皮疹", "grade": 1}, user=USER)
    rows = build_sdtm(app)[0]
    write_package(tmp_path, DATASETS, rows, trial="NCT06171906", standard="SDTMIG")
    raw = (tmp_path / "ae.xpt").read_bytes()
    assert all(b < 128 for b in raw[:80]) and b"u-rash - ??" in raw
    frame, _ = pyreadstat.read_xport(str(tmp_path / "ae.xpt"))
    assert list(frame["AETERM"]) == ["u-rash - ??"]
    doc = json.loads((tmp_path / "ae.json").read_text(encoding="utf-8"))
    assert doc["rows"][0][doc["columns"].index(next(c for c in doc["columns"] if c["name"] == "AETERM"))] == \
        "µ-rash – 皮疹"  # Dataset-JSON keeps the UTF-8 text


def test_every_file_validates_with_tools_others_wrote(sdtm: Any, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pyreadstat = pytest.importorskip("pyreadstat")
    import pandas as pd
    xmlschema = pytest.importorskip("xmlschema")
    odmlib = pytest.importorskip("odmlib")
    from odmlib.dataset_json_1_1.model import DatasetJSON

    counts = write_package(tmp_path, DATASETS, sdtm, trial="NCT06171906", standard="SDTMIG")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["define.xml", *(f"{n.lower()}.{ext}" for n in DATASETS for ext in ("json", "xpt"))])
    for name, ds in DATASETS.items():
        doc = json.loads((tmp_path / f"{name.lower()}.json").read_text())
        jsonschema.validate(doc, SCHEMA)
        model = DatasetJSON.from_dict(doc)
        assert model.records == counts[name] == len(model.rows) and model.column_names == list(ds.names)
        frame, meta = pyreadstat.read_xport(str(tmp_path / f"{name.lower()}.xpt"))
        assert list(frame.columns) == list(ds.names) and len(frame) == counts[name]
        assert meta.column_names_to_labels == {v.name: v.label for v in ds.variables}
        assert meta.table_name == name[:8]
        second = pd.read_sas(str(tmp_path / f"{name.lower()}.xpt"), format="xport", encoding="ascii")
        assert list(second.columns) == list(ds.names) and len(second) == counts[name]
    base = os.path.join(os.path.dirname(odmlib.__file__), "schemas", "define", "2.1", "define2-1-0.xsd")
    xmlschema.XMLSchema(base).validate(str(tmp_path / "define.xml"))
    import xml.etree.ElementTree as ET
    define = ET.parse(tmp_path / "define.xml").getroot()
    declared = {i.get("OID"): i for i in define.iter("{http://www.cdisc.org/ns/odm/v1.3}ItemDef")}
    for name, ds in DATASETS.items():  # define.xml declares the types and lengths the files carry
        doc = json.loads((tmp_path / f"{name.lower()}.json").read_text())
        _, meta = pyreadstat.read_xport(str(tmp_path / f"{name.lower()}.xpt"), metadataonly=True)
        for v, column in zip(ds.variables, doc["columns"], strict=True):
            item = declared[column["itemOID"]]
            if v.numeric:
                assert meta.readstat_variable_types[v.name] == "double" and item.get("DataType") in ("integer", "float")
            elif v.type == "text":
                assert item.get("Length") == str(column["length"]) == str(meta.variable_storage_width[v.name])
    from odmlib.define_loader import XMLDefineLoader
    from odmlib.loader import ODMLoader
    loader = ODMLoader(XMLDefineLoader(model_package="define_2_1", ns_uri="http://www.cdisc.org/ns/def/v2.1"))
    loader.open_odm_document(str(tmp_path / "define.xml"))
    mdv = loader.MetaDataVersion()
    assert {ig.Name for ig in mdv.ItemGroupDef} == set(DATASETS)
    assert len(mdv.ItemDef) == sum(len(ds.variables) for ds in DATASETS.values())


def test_export_sdtm_cli_and_as_of(pgf_any: Pgf, tmp_path: Path) -> None:
    from tests.conftest import enrol_via_cli
    enrol_via_cli(pgf_any)
    pgf_any.ok("export", "sdtm", str(tmp_path / "out"))
    assert (tmp_path / "out" / "dm.xpt").exists() and (tmp_path / "out" / "define.xml").exists()
    doc = json.loads((tmp_path / "out" / "dm.json").read_text())
    assert doc["records"] == 1
    pgf_any.ok("export", "sdtm", str(tmp_path / "early"), "--as-of", "2000-01-01")
    assert json.loads((tmp_path / "early" / "dm.json").read_text())["records"] == 0
    pgf_any.rejected("export", "sdtm", str(tmp_path / "x"), "--as-of", "yesterday", contains="as")
    assert not (tmp_path / "x").exists()


def test_a_missing_export_extra_is_one_error_line_and_nothing_written(pgf: Pgf, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tests.conftest import enrol_via_cli
    enrol_via_cli(pgf)
    monkeypatch.setitem(sys.modules, "pyreadstat", None)
    pgf.rejected("export", "submission", str(tmp_path / "sub"), contains="pip install 'pgf-events[export]'")
    assert not (tmp_path / "sub").exists()


def test_a_patient_followed_to_the_horizon_completes_and_no_ae_follows_the_last_ds() -> None:
    from datetime import UTC, datetime

    from pgf_events.store import parse_url
    app = TrialConduct(parse_url("memory://"), clock=lambda: datetime(2026, 6, 1, tzinfo=UTC))
    enrolled(app, "S005")
    infuse(app, "S005", "2025-02-25")
    app.record("ae", "S005", {"onset": "2026-02-20", "term": "fatigue", "grade": 1}, user=USER)
    app.record("contact", "S005", {"date": "2026-03-01", "status": "alive", "disease": "free"}, user=USER)
    rows = build_sdtm(app)[0]
    app.close()
    ds = [(r["DSDECOD"], r["DSSCAT"], str(r["DSSTDTC"])) for r in rows["DS"]]
    assert ds[-1] == ("COMPLETED", "STUDY PARTICIPATION", "2026-03-01")  # 369 days after D1 >= 365
    last = max(r["DSSTDTC"] for r in rows["DS"])
    assert all(r["AESTDTC"] <= last for r in rows["AE"])
    assert rows["DM"][0]["RFPENDTC"] == last


def test_vital_signs_go_to_vs_with_their_time_point(app: TrialConduct) -> None:
    enrolled(app, "S006")
    infuse(app, "S006", "2025-02-25")
    app.record("vitals", "S006", {"date": "2025-02-25", "timepoint": "15 min post-infusion", "temperature": 38.4,
                                  "pulse": 112}, user=USER)
    vs = {r["VSTESTCD"]: r for r in build_sdtm(app)[0]["VS"] if r["VSTESTCD"] != "WEIGHT"}
    assert {k: (r["VSORRES"], r["VSORRESU"], r["VSTPT"], r["EPOCH"]) for k, r in vs.items()} == {
        "TEMP": ("38.4", "C", "15 min post-infusion", "TREATMENT"),
        "PULSE": ("112", "beats/min", "15 min post-infusion", "TREATMENT")}
