"""pgf status / report / projections through the real CLI (SQLite file store)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgf_events.projections.slices import PROJECTIONS
from tests.conftest import Pgf, enrol_via_cli
from tests.projections.common import SURVIVAL_KEYS, assert_status_keys

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="matplotlib is not installed (pip install 'pgf-events[plot]')")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _treated(pgf: Pgf, subject: str = "S001") -> None:
    enrol_via_cli(pgf, subject)
    pgf.ok("record", "infusion", subject, "--date", "2025-03-01", "--cells", "6.1e7", "--weight-kg", "61")
    for day, anc, plt, hb in (("02", 0.6, 12, 65), ("04", 0.7, 15, 68), ("06", 0.9, 25, 71)):
        pgf.ok("record", "lab", subject, "--date", f"2025-03-{day}", "--anc", str(anc), "--plt", str(plt),
               "--hb", str(hb))
    pgf.ok("record", "transfusion", subject, "--date", "2025-03-03", "--product", "platelets")


@pytest.fixture
def demo(pgf: Pgf) -> Pgf:
    pgf.ok("demo", "--patients", "8", "--seed", "3")
    return pgf


def test_status_json_has_the_interface_keys(pgf: Pgf) -> None:
    _treated(pgf)
    doc = json.loads(pgf.ok("status", "s001", "--json").stdout)
    assert_status_keys(doc)
    assert doc["subject"] == "S001" and doc["as_of"] is None
    assert doc["endpoints"]["neutrophil_engraftment_date"] == "2025-03-02"
    assert doc["dosing"]["given"] == 1 and doc["dosing"]["cumulative_cells_per_kg"] == 1e6


def test_status_human_output_is_one_line_per_topic(pgf: Pgf) -> None:
    _treated(pgf)
    out = pgf.ok("status", "S001").stdout
    assert "eligibility  eligible" in out
    assert "neutrophils  2025-03-02 (day +51 post-transplant, MSC D2)" in out
    topics = [line for line in out.strip().splitlines() if not line.startswith(" ")]  # wrapped lines are indented
    assert len(topics) == 12  # subject ... outcome, signatures
    assert max(len(line) for line in out.splitlines()) <= 100
    assert out.strip().splitlines()[-1] == "signatures   -"


def test_status_of_an_unknown_subject_is_one_error_line(pgf: Pgf) -> None:
    _treated(pgf)
    result = pgf("status", "S999")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "S999" in result.stderr


def test_status_as_of_answers_from_what_was_recorded_by_then(pgf: Pgf) -> None:
    _treated(pgf)
    time.sleep(0.01)
    cut = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    ref = json.loads(pgf.ok("record", "lab", "S001", "--date", "2025-03-03", "--anc", "0.3", "--json").stdout)["ref"]
    now = json.loads(pgf.ok("status", "S001", "--json").stdout)
    then = json.loads(pgf.ok("status", "S001", "--as-of", cut, "--json").stdout)
    assert now["endpoints"]["neutrophil_engraftment_date"] is None  # the 0.3 breaks the run
    assert then["endpoints"]["neutrophil_engraftment_date"] == "2025-03-02"
    assert then["as_of"] is not None and then["version"] == now["version"] - 1
    pgf.ok("void", ref, "--reason", "wrong patient")
    assert json.loads(pgf.ok("status", "S001", "--json").stdout)["endpoints"] == then["endpoints"]


def test_every_report_has_rows_and_a_summary(demo: Pgf) -> None:
    for name in PROJECTIONS:
        doc = json.loads(demo.ok("report", name, "--json").stdout)
        assert doc["report"] == name and doc["as_of"] is None
        subjects = [r["subject"] for r in doc["rows"]]
        assert subjects == sorted(set(subjects)) and len(subjects) >= 8
        assert isinstance(doc["summary"], dict) and doc["summary"]
        assert demo.ok("report", name).stdout.startswith(f"{name} report")
        csv_lines = demo.ok("report", name, "--csv").stdout.splitlines()
        assert csv_lines[0].startswith("subject,") and len(csv_lines) == len(subjects) + 1


def test_eligibility_report_counts_the_consort_flow(demo: Pgf) -> None:
    summary = json.loads(demo.ok("report", "eligibility", "--json").stdout)["summary"]
    for key in ("screened", "ineligible", "ineligible_criteria", "consented", "enrolled", "treated", "completed",
                "withdrawn", "died"):
        assert key in summary
    assert summary["enrolled"] == 8 and summary["screened"] >= summary["enrolled"] + summary["ineligible"]


def test_survival_report_has_one_year_os_and_dfs(demo: Pgf) -> None:
    doc = json.loads(demo.ok("report", "survival", "--json").stdout)
    for key in ("os_1y", "dfs_1y"):
        assert set(doc[key]) >= SURVIVAL_KEYS and doc[key] == doc["summary"][key]
        assert 0 <= doc[key]["estimate"] <= 1
    assert doc["origin"] == "first_infusion" and "from_transplant" in doc["summary"]


def test_projections_status_shows_the_lag_and_rebuild_replays_it(pgf: Pgf) -> None:
    _treated(pgf)
    before = json.loads(pgf.ok("projections", "status", "--json").stdout)["projections"]
    assert [p["name"] for p in before] == list(PROJECTIONS)
    assert all(p["behind"] == p["head"] > 0 for p in before)  # nothing read yet: nothing caught up
    pgf.ok("report", "endpoints")
    after = json.loads(pgf.ok("projections", "status", "--json").stdout)["projections"]
    assert all(p["behind"] == 0 and p["position"] == p["head"] and p["rows"] == 1 for p in after)
    result = json.loads(pgf.ok("projections", "rebuild", "--json").stdout)
    assert result["events"] == after[0]["head"] and result["projections"] == list(PROJECTIONS)
    assert "rebuilt dosing from" in pgf.ok("projections", "rebuild", "dosing").stdout
    assert pgf("projections", "rebuild", "nonsense").exit_code == 2
    assert "eligibility" in pgf.ok("projections", "status").stdout


def test_a_rebuild_gives_byte_identical_reports(demo: Pgf) -> None:
    def outputs() -> dict[str, str]:
        out = {}
        for name in PROJECTIONS:
            out[name] = demo.ok("report", name, "--json").stdout
            out[name + ".csv"] = demo.ok("report", name, "--csv").stdout
        out["status"] = demo.ok("status", "S001", "--json").stdout
        return out

    first = outputs()
    demo.ok("projections", "rebuild")
    assert outputs() == first
    for name in PROJECTIONS:
        demo.ok("projections", "rebuild", name)
    assert outputs() == first


@needs_matplotlib
def test_plots_are_pngs(demo: Pgf, tmp_path: Path) -> None:
    status_png, km_png = tmp_path / "s001.png", tmp_path / "km.png"
    demo.ok("status", "S001", "--plot", str(status_png))
    demo.ok("report", "survival", "--plot", str(km_png))
    demo.ok("status", "S002", "--as-of", "2099-01-01", "--plot", str(tmp_path / "s002.png"))
    for png in (status_png, km_png, tmp_path / "s002.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000


def test_plot_is_for_reports_with_a_figure(pgf: Pgf, tmp_path: Path) -> None:
    _treated(pgf)
    result = pgf("report", "gvhd", "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "gvhd has no figure" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_plotting_without_matplotlib_is_one_clear_error(pgf: Pgf, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _treated(pgf)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = pgf("status", "S001", "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: plotting needs matplotlib: pip install 'pgf-events[plot]'"
    assert not (tmp_path / "x.png").exists()
