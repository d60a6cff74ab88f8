"""Issue 19, the CLI a coordinator enjoys: every example of the issue through the real CLI on real stores.

Tables that fit 100 columns, --columns/--wide/--tsv/--jsonl, options after the command, a plain
path for --db, pgf patients, the record echo, report listings in CSV, protocol overrides that leave
the shared read models alone, and the README's paths (demo twice, --as-of on a fresh demo,
projections status NAME, export sdtm -).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgf_events import identity
from pgf_events.cli import cli, hoist_global_options
from pgf_events.projections.slices import PROJECTIONS
from tests.conftest import REGISTER, SCREEN_OK, Pgf, enrol_via_cli


@pytest.fixture
def demo(pgf: Pgf) -> Pgf:
    pgf.ok("demo", "--patients", "8", "--seed", "3")
    return pgf


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


# -- 1. tables that fit -------------------------------------------------------------------------


def test_every_report_and_history_fit_100_columns(demo: Pgf) -> None:
    for name in PROJECTIONS:
        out = demo.ok("report", name).stdout
        assert _widest(out) <= 100, (name, [line for line in out.splitlines() if len(line) > 100][:3])
    assert _widest(demo.ok("history", "S001").stdout) <= 100
    assert _widest(demo.ok("patients").stdout) <= 100
    assert _widest(demo.ok("status", "S001").stdout) <= 100


def test_wide_shows_every_column_unwrapped(demo: Pgf) -> None:
    narrow = demo.ok("report", "dosing").stdout
    wide = demo.ok("report", "dosing", "--wide").stdout
    assert _widest(wide) > 100 and "refs" in wide.splitlines()[1] and "refs" not in narrow


def test_columns_picks_columns_by_key_or_header(demo: Pgf) -> None:
    out = demo.ok("report", "dosing", "--columns", "subject,RDI,msc_d1").stdout.splitlines()
    assert out[1].split() == ["subject", "RDI", "MSC", "D1"]
    rows = list(csv.DictReader(io.StringIO(demo.ok("report", "dosing", "--csv", "--columns", "subject,given").stdout)))
    assert set(rows[0]) == {"subject", "given"}
    demo.rejected("report", "dosing", "--columns", "subject,nonsense", contains="no column 'nonsense'", code=2)


def test_tsv_and_jsonl_for_tables(demo: Pgf) -> None:
    tsv = demo.ok("report", "safety", "--tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:3] == ["subject", "enrolled", "adverse_events"]
    lines = demo.ok("patients", "--jsonl").stdout.splitlines()
    assert len(lines) == 8 + len([s for s in lines if json.loads(s)["subject"].startswith("SF")])
    assert json.loads(lines[0])["subject"] == "S001"


def test_people_read_units_machines_read_numbers(demo: Pgf) -> None:
    human = demo.ok("report", "dosing").stdout
    assert "×10^6/kg" in human and "RDI" in human and "%" in human and "e+06" not in human
    row = json.loads(demo.ok("report", "dosing", "--json").stdout)["rows"][0]
    assert isinstance(row["cumulative_cells_per_kg"], float) and row["cumulative_cells_per_kg"] > 1e5
    assert 0 < row["relative_dose_intensity"] < 2
    gvhd = demo.ok("report", "gvhd").stdout
    assert "acute grade II–IV:" in gvhd and "acute_2_4" not in gvhd
    survival = demo.ok("report", "survival").stdout
    assert "OS at 1 year:" in survival and "os_1y" not in survival
    assert "censored" in survival or "death" in survival


# -- 2. global options anywhere; --db takes a path ------------------------------------------------


def test_global_options_after_the_command_and_a_plain_path(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "trial.db")
    with identity.authenticator_replaced(lambda: "li.na"):  # the harness's seam: li.na is who is acting
        result = runner.invoke(cli, ["record", "register", "S001", *REGISTER, "--db", db, "--user", "li.na"])
        assert result.exit_code == 0, result.stderr
        status = runner.invoke(cli, ["status", "S001", "--db", db, "--user", "li.na"])
        assert status.exit_code == 0 and "S001 (site PKU" in status.stdout
        url = runner.invoke(cli, ["--db", f"sqlite:///{db}", "--user", "li.na", "history", "S001", "--json"])
        assert json.loads(url.stdout)["subject"] == "S001"
    assert hoist_global_options(["record", "lab", "--", "--db", "x"]) == ["record", "lab", "--", "--db", "x"]
    assert hoist_global_options(["status", "S1", "--db=x.db"]) == ["--db=x.db", "status", "S1"]


def test_global_options_after_the_command_on_postgres(pg_url: str) -> None:
    runner = CliRunner()
    me = "coordinator1"  # pg_url's database login: --user may only restate it
    assert runner.invoke(cli, ["record", "register", "S001", *REGISTER, "--db", pg_url, "--user", me]).exit_code == 0
    result = runner.invoke(cli, ["patients", "--json", "--db", pg_url, "--user", me])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "screening"


# -- 3. pgf patients ------------------------------------------------------------------------------


def test_patients_lists_one_line_per_patient_with_filters(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any, "S001")
    pgf_any.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61")
    pgf_any.ok("record", "register", "S002", *REGISTER[:1], "XYZ", *REGISTER[2:])
    rows = json.loads(pgf_any.ok("patients", "--json").stdout)
    assert [r["subject"] for r in rows] == ["S001", "S002"]
    s001 = rows[0]
    assert s001["status"] == "on-treatment" and s001["doses"] == "1/4" and s001["next_dose"] == 2
    assert s001["window"] == "2025-03-02/2025-03-06" and s001["msc_d1"] == "2025-02-25"
    assert [r["subject"] for r in json.loads(pgf_any.ok("patients", "--site", "xyz", "--json").stdout)] == ["S002"]
    only = json.loads(pgf_any.ok("patients", "--status", "screening,died", "--json").stdout)
    assert [r["subject"] for r in only] == ["S002"]
    table = pgf_any.ok("patients").stdout
    assert "03-02–03-06" in table and "on-treatment" in table
    assert pgf_any.ok("patients", "--csv").stdout.startswith("subject,site,status,msc_d1,doses,next_dose,window")
    pgf_any.rejected("patients", "--status", "bogus", contains="'bogus' is not one of", code=2)


# -- 4. the record echo ----------------------------------------------------------------------------


def test_record_echoes_what_was_stored_and_status_changes(pgf_any: Pgf) -> None:
    pgf_any.ok("record", "register", "S001", *REGISTER)
    pgf_any.ok("record", "consent", "S001", "--date", "2025-02-18")
    screen = pgf_any.ok("record", "screen", "S001", "--date", "2025-02-20", *SCREEN_OK).stdout
    assert screen.splitlines()[0].startswith("S001#3 screen 2025-02-20: KPS 80")
    assert "  -> eligible now" in screen
    assert "enrolled 2025-02-24" in pgf_any.ok("record", "enrol", "S001", "--date", "2025-02-24").stdout
    dose1 = pgf_any.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7",
                       "--weight-kg", "61").stdout
    assert "weight 61 kg" in dose1 and "dose 1 on time on 2025-02-25 (MSC D1)" in dose1
    lab = pgf_any.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18", "--hb", "7.2",
                     "--hb-unit", "g/dL").stdout.splitlines()
    assert lab[0].startswith("S001#6 lab 2025-03-01: ")
    assert "Hb 72 g/L (7.2 g/dL)" in lab[0] and "ANC 0.4" in lab[0] and "PLT 18" in lab[0]
    for day in ("02", "03"):
        pgf_any.ok("record", "lab", "S001", "--date", f"2025-03-{day}", "--anc", "0.7", "-q")
    engrafted = pgf_any.ok("record", "lab", "S001", "--date", "2025-03-04", "--anc", "0.8").stdout
    assert "-> neutrophil engraftment reached 2025-03-02 (MSC D6" in engrafted
    dose2 = pgf_any.ok("record", "infusion", "S001", "--date", "2025-03-04", "--cells", "6.1e7",
                       "--weight-kg", "61").stdout
    assert "dose 2 on time on 2025-03-04 (MSC D8)" in dose2
    quiet = pgf_any.ok("record", "lab", "S001", "--date", "2025-03-05", "--anc", "0.9", "--quiet").stdout
    assert quiet == "S001#11\n"


# -- 5. plots never crash ---------------------------------------------------------------------------


def _course(pgf: Pgf) -> None:
    enrol_via_cli(pgf, "R1")
    pgf.ok("record", "infusion", "R1", "--date", "2025-03-01", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("record", "lab", "R1", "--date", "2025-03-02", "--anc", "0.4", "--plt", "12")
    pgf.ok("record", "lab", "R1", "--date", "2025-03-02", "--anc", "0.5", "--hb", "70")  # same day


def test_status_plot_with_two_labs_on_one_day(pgf: Pgf, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _course(pgf)
    pgf.ok("status", "R1", "--plot", str(tmp_path / "r1.png"))
    assert (tmp_path / "r1.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("name", "message"), [
    ("nofolder/r1.png", "the folder"), ("r1.txt", "must end in .png, .pdf, .svg (it has '.txt')"),
    ("r1", "(it has no extension)"), ("km.txt", "must end in"),
])
def test_bad_plot_paths_are_one_line(pgf: Pgf, tmp_path: Path, name: str, message: str) -> None:
    _course(pgf)
    target = tmp_path / name
    pgf.rejected("status", "R1", "--plot", str(target), contains=message)
    pgf.rejected("report", "survival", "--plot", str(target), contains=message)
    assert not target.exists()


def test_cohort_figures(demo: Pgf, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    for name in ("survival", "endpoints", "dosing", "eligibility"):
        png = tmp_path / f"{name}.png"
        result = demo.ok("report", name, "--plot", str(png), "--json")
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
        assert f"wrote {png}" in result.stderr
    svg = tmp_path / "km.svg"
    demo.ok("report", "survival", "--plot", str(svg))
    assert "months from the first MSC infusion" in svg.read_text()


# -- 6. reports carry the summary and listings in CSV -------------------------------------------------


def test_report_listings_in_csv(demo: Pgf, tmp_path: Path) -> None:
    saes = list(csv.DictReader(io.StringIO(demo.ok("report", "safety", "--csv", "--listing", "saes").stdout)))
    if saes:
        assert {"subject", "ref", "term", "grade", "sponsor_due", "sponsor_met"} <= set(saes[0])
    summary = list(csv.DictReader(io.StringIO(demo.ok("report", "endpoints", "--csv", "--listing", "summary").stdout)))
    engraftment = next(r for r in summary if r["metric"] == "neutrophil_engraftment")
    assert engraftment["k"] and engraftment["n"] and float(engraftment["estimate"]) <= 1
    written = demo.ok("report", "dosing", "--csv", "-o", str(tmp_path / "dosing")).stderr
    files = sorted(p.name for p in (tmp_path / "dosing").iterdir())
    assert {"dosing.csv", "dosing-summary.csv", "dosing-deviations.csv", "dosing-discontinued.csv"} <= set(files)
    assert "wrote" in written
    demo.rejected("report", "safety", "--listing", "nonsense", contains="choose from", code=2)
    demo.rejected("report", "safety", "-o", str(tmp_path / "x"), contains="needs --csv", code=2)


# -- 7. protocol overrides leave the shared read models alone ------------------------------------------


def test_protocol_override_is_evaluated_in_memory(demo: Pgf, tmp_path: Path) -> None:
    before = json.loads(demo.ok("projections", "status", "--json").stdout)
    override = tmp_path / "strict.toml"
    override.write_text("anc_threshold = 1.0\n")
    doc = json.loads(demo.ok("--protocol", str(override), "report", "endpoints", "--json").stdout)
    assert doc["protocol_version"].startswith("NCT06171906-v2+")
    assert json.loads(demo.ok("projections", "status", "--json").stdout) == before
    demo.rejected("--protocol", str(override), "projections", "rebuild", contains="shared read models")
    demo.rejected("--protocol", str(override), "follow", "--once", contains="not to the change feed")


def test_bad_protocol_file_names_the_parameter(pgf: Pgf, tmp_path: Path) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    bad = tmp_path / "bad.toml"
    bad.write_text('planned_doses = "four"\n')
    result = pgf.rejected("--protocol", str(bad), "status", "S001")
    assert result.stderr.strip() == "Error: protocol parameter planned_doses must be a whole number, not 'four'"


# -- 8. the README's paths ---------------------------------------------------------------------------


def test_demo_twice_says_it_already_ran(demo: Pgf) -> None:
    again = demo.ok("demo", "--patients", "8", "--seed", "3")
    assert "already holds a demo cohort" in again.stderr and "endpoints report" in again.stdout


def test_as_of_before_a_fresh_demo_says_why_it_is_empty(demo: Pgf) -> None:
    result = demo.ok("report", "endpoints", "--as-of", "2025-06-30")
    assert "nothing had been recorded by" in result.stderr and "--cutoff" in result.stderr


def test_projections_status_name_and_export_sdtm_dash(demo: Pgf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = json.loads(demo.ok("projections", "status", "survival", "--json").stdout)["projections"]
    assert [r["name"] for r in rows] == ["survival"]
    monkeypatch.chdir(tmp_path)
    demo.rejected("export", "sdtm", "-", contains="needs a folder", code=2)
    assert not (tmp_path / "-").exists()


def test_no_progress_output_when_not_a_terminal(demo: Pgf) -> None:
    result = demo.ok("projections", "rebuild")
    assert result.stderr == "" or all(c not in result.stderr for c in "⠋⠙⠹━")
