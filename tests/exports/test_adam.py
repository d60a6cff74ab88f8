"""ADaM from the engine's derivations: the estimates an analyst computes from ADTTE and ADRS equal the
engine's own reports, and every record traces back to SDTM and to pgf events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pgf_events.domain.rules.survival import aalen_johansen, kaplan_meier
from pgf_events.exports.adam import DATASETS
from tests.conftest import Pgf


def load(folder: Path, name: str) -> list[dict[str, Any]]:
    doc = json.loads((folder / f"{name}.json").read_text())
    names = [c["name"] for c in doc["columns"]]
    return [dict(zip(names, row, strict=True)) for row in doc["rows"]]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pgf, Path]:
    base = tmp_path_factory.mktemp("adam")
    pgf = Pgf(f"sqlite:///{base / 'trial.db'}")
    pgf.ok("demo", "--patients", "30", "--seed", "5")
    pgf.ok("export", "submission", str(base / "sub"))
    return pgf, base / "sub"


def observations(adtte: list[dict[str, Any]], paramcd: str) -> list[tuple[float, int, float]]:
    out = []
    for r in adtte:
        if r["PARAMCD"] == paramcd and r["ENRLFL"] == "Y":
            status = 2 if r["CMPEVFL"] == "Y" else 1 - r["CNSR"]
            out.append((r["AVAL"], status, r["DELENTRY"] or 0))
    return out


def test_km_and_cumulative_incidence_from_adtte_equal_pgf_report_survival(cohort: tuple[Pgf, Path]) -> None:
    lifelines = pytest.importorskip("lifelines")
    pgf, folder = cohort
    report = json.loads(pgf.ok("report", "survival", "--json").stdout)
    summary = report["summary"]
    adtte = load(folder / "analysis" / "adam", "adtte")
    horizon = summary["horizon_days"]
    for paramcd, key in (("OS", "os_1y"), ("DFS", "dfs_1y")):
        obs = observations(adtte, paramcd)
        assert len(obs) == summary[key]["n"]
        mine = kaplan_meier([(t, s) for t, s, _ in obs], horizon, entry=[e for _, _, e in obs]
                            if summary[key]["delayed_entry"] else None)
        assert mine.estimate == pytest.approx(summary[key]["estimate"], abs=1e-12)
        assert mine.events == summary[key]["events"]
        fitter = lifelines.KaplanMeierFitter().fit([t for t, _, _ in obs], [s for _, s, _ in obs])
        assert float(fitter.survival_function_at_times(horizon).iloc[0]) == pytest.approx(summary[key]["estimate"])
    obs = observations(adtte, "RELAPSE")
    incidence = aalen_johansen([(t, s) for t, s, _ in obs], horizon)
    assert incidence.estimate == pytest.approx(summary["relapse_1y"]["estimate"], abs=1e-12)
    assert incidence.competing_events == summary["relapse_1y"]["competing_events"]


def test_response_rates_from_adrs_equal_pgf_report_endpoints(cohort: tuple[Pgf, Path]) -> None:
    pgf, folder = cohort
    summary = json.loads(pgf.ok("report", "endpoints", "--json").stdout)["summary"]
    adrs = load(folder / "analysis" / "adam", "adrs")

    def counted(paramcd: str, *values: str) -> tuple[int, int]:
        rows = [r for r in adrs if r["PARAMCD"] == paramcd and r["ANL01FL"] == "Y"]
        return sum(1 for r in rows if r["AVALC"] in values), len(rows)

    for paramcd, key in (("NEUTENG", "neutrophil_engraftment"), ("RBCREC", "rbc_recovery")):
        k, n = counted(paramcd, "Y")
        assert (k, n) == (summary[key]["k"], summary[key]["n"]), paramcd
    plt = summary["platelet_response"]
    assert counted("PLTRESP", "CR") == (plt["CR"]["k"], plt["CR"]["n"])
    assert counted("PLTRESP", "PR") == (plt["PR"]["k"], plt["PR"]["n"])
    assert counted("PLTRESP", "NR")[0] == plt["NR"]
    reasons = [r["REASON"] for r in adrs if r["PARAMCD"] == "PLTRESP" and r["REASON"]]
    assert sorted(set(reasons)) == sorted(plt["reasons"]) and len(reasons) == sum(plt["reasons"].values())


def test_every_analysis_record_traces_to_sdtm_and_pgf_events(cohort: tuple[Pgf, Path]) -> None:
    pgf, folder = cohort
    sdtm = {name: {(r["USUBJID"], r[f"{name}SEQ"]): r for r in load(folder / "tabulations" / "sdtm", name.lower())}
            for name in ("AE", "DS", "LB", "RS", "DD", "EX", "PR", "VS", "MB", "XG", "MH")}
    checked = 0
    histories: dict[str, dict[str, Any]] = {}
    for name in ("ADTTE", "ADRS", "ADAE"):
        for r in load(folder / "analysis" / "adam", name.lower()):
            if r["SRCDOM"] is None:
                assert r["CNSR" if name == "ADTTE" else "AVALC"] in (1, "N", "NR", "NE"), r
                continue
            source = sdtm[r["SRCDOM"]][(r["USUBJID"], r["SRCSEQ"])]
            assert r["SRCVAR"] in source and source[f"{r['SRCDOM']}SPID"] in r["PGFREF"].split(";")
            subject = r["USUBJID"].rpartition("-")[2]
            if subject not in histories:
                histories[subject] = {h["ref"]: h for h in json.loads(pgf.ok("history", subject, "--json").stdout)["events"]}
            for ref in r["PGFREF"].split(";"):
                assert ref in histories[subject], ref  # every pgf reference is an event of the subject
            checked += 1
    assert checked


def test_adam_files_validate_and_name_their_variables(cohort: tuple[Pgf, Path]) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    xmlschema = pytest.importorskip("xmlschema")
    odmlib = pytest.importorskip("odmlib")
    import os
    _, folder = cohort
    adam = folder / "analysis" / "adam"
    base = os.path.join(os.path.dirname(odmlib.__file__), "schemas", "define", "2.1", "define2-1-0.xsd")
    xmlschema.XMLSchema(base).validate(str(adam / "define.xml"))
    for name, ds in DATASETS.items():
        frame, meta = pyreadstat.read_xport(str(adam / f"{name.lower()}.xpt"))
        assert list(frame.columns) == list(ds.names)
        # the SAS format DATE9. ("DATE9" before pyreadstat 1.3.8, which reads back the trailing period)
        dates = [v.name for v in ds.variables if v.type == "sasdate"]
        assert all(meta.original_variable_types[n] in ("DATE9", "DATE9.") for n in dates), meta.original_variable_types
    guide = (folder / "reviewers-guide.md").read_text()
    assert "Known conformance notes" in guide and "XG" in guide and "MedDRA" in guide
