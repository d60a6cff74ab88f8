"""Every record kind through the real CLI on a real SQLite file: good input, bad input, store unchanged."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REGISTER, SCREEN_OK, Pgf, enrol_via_cli

GOOD = {
    "screen": ["--date", "2025-02-20", *SCREEN_OK],
    "consent": ["--date", "2025-02-18", "--version", "2.1"],
    "transfusion": ["--date", "2025-03-02", "--product", "platelets", "--units", "2"],
    "lab": ["--date", "2025-03-01", "--anc", "0.4", "--plt", "18", "--hb", "7.2", "--hb-unit", "g/dL", "--wbc", "1.1",
            "--bilirubin", "1.2", "--bilirubin-unit", "mg/dL"],
    "ae": ["--onset", "2025-03-04", "--term", "febrile neutropenia", "--grade", "3", "--serious", "hospitalisation",
           "--related", "unlikely", "--aware", "2025-03-04T09:30", "--end", "2025-03-09", "--outcome", "recovered"],
    "infection": ["--onset", "2025-03-10", "--site", "lung", "--grade", "3", "--organism", "Aspergillus"],
    "gvhd": ["--date", "2025-03-12", "--skin-bsa", "30", "--bullae", "--bilirubin", "25", "--bilirubin-unit", "µmol/L",
             "--upper-gi", "no",
             "--stool-ml", "600", "--severe-pain"],
    "relapse": ["--date", "2025-10-02"],
    "contact": ["--date", "2025-11-10", "--status", "alive", "--disease", "relapsed"],
    "withdraw": ["--date", "2025-11-11", "--reason", "moved abroad"],
    "death": ["--date", "2025-12-14", "--cause", "relapse"],
}


def test_every_record_kind_is_accepted_and_prints_its_reference(pgf: Pgf) -> None:
    assert pgf.ok("record", "register", "S001", *REGISTER, "--donor-type", "haploidentical",
                  "--diagnosis", "AML", "--source", "REG-1").stdout.split()[0] == "S001#1"
    version = 1
    for kind in ("consent", "screen"):
        version += 1
        assert pgf.ok("record", kind, "S001", *GOOD[kind]).stdout.split()[0] == f"S001#{version}"
    assert pgf.ok("record", "enrol", "S001", "--date", "2025-02-24", "--pgf-type", "secondary",
                  "--pgf-diagnosis-date", "2025-02-15").stdout.split()[0] == "S001#4"
    assert pgf.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61",
                  "--lot", "UC-14").stdout.split()[0] == "S001#5"
    version = 5
    for kind in ("transfusion", "lab", "ae", "infection", "gvhd", "relapse", "contact", "withdraw", "death"):
        version += 1
        assert pgf.ok("record", kind, "S001", *GOOD[kind]).stdout.split()[0] == f"S001#{version}"
    assert pgf.ok("record", "gvhd", "S001", "--date", "2025-09-01", "--chronic", "--organ", "skin=1",
                  "--organ", "lungs=1").stdout.split()[0] == f"S001#{version + 1}"


def test_record_json_output(pgf: Pgf) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    out = json.loads(pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--source", "LIS-9",
                            "--json").stdout)
    assert out["ref"] == "S001#2" and out["kind"] == "lab" and out["recorded_by"] == "coordinator1"
    assert out["recorded_at"].endswith("Z")


def test_subject_codes_are_case_insensitive(pgf: Pgf) -> None:
    pgf.ok("record", "register", "s001", *REGISTER)
    assert pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "1").stdout.split()[0] == "S001#2"
    pgf.rejected("record", "register", "S001", *REGISTER, contains="already registered")


BAD = [
    (["lab", "S001", "--date", "2025-03-01", "--anc", "150"], "--anc 150 x10^9/L is out of range 0–100"),
    (["lab", "S001", "--date", "2025-03-01", "--plt", "2500"], "out of range 0–2000"),
    (["lab", "S001", "--date", "2025-03-01", "--hb", "9.1"], "add --hb-unit g/dL"),
    (["lab", "S001", "--date", "2025-03-01", "--hb", "9", "--hb-unit", "mmol/L"], "must be one of g/L, g/dL"),
    (["lab", "S001", "--date", "2025-03-01", "--bilirubin", "1200", "--bilirubin-unit", "umol/L"],
     "out of range 0–1000"),
    (["lab", "S001", "--date", "2025-03-01", "--anc", "nan"], "finite number"),
    (["lab", "S001", "--date", "2025-03-01", "--anc", "0,4"], "must be a number"),
    (["lab", "S001", "--date", "2025-03-01"], "at least one value"),
    (["lab", "S001", "--date", "2025-02-29", "--anc", "1"], "not a real calendar date"),
    (["lab", "S001", "--date", "2099-01-01", "--anc", "1"], "in the future"),
    (["lab", "S001", "--date", "1979-05-01", "--anc", "1"], "before the birth date"),
    (["lab", "S404", "--date", "2025-03-01", "--anc", "1"], "S404 is not registered"),
    (["screen", "S001", "--date", "2025-02-20", "--kps", "65"], "steps of 10"),
    (["screen", "S001", "--date", "2025-02-20", "--criterion", "IN2=yes"], "derived"),
    (["screen", "S001", "--date", "2025-02-20", "--criterion", "IN1"], "must look like IN1=yes"),
    (["ae", "S001", "--onset", "2025-03-01", "--term", "rash", "--grade", "6"], "out of range 1–5"),
    (["ae", "S001", "--onset", "2025-03-01", "--term", "rash", "--grade", "2", "--serious", "sad"], "must be one of"),
    (["infection", "S001", "--onset", "2025-03-01", "--site", "lung", "--grade", "0"], "out of range 1–5"),
    (["gvhd", "S001", "--date", "2025-03-01"], "acute GVHD assessment needs"),
    (["gvhd", "S001", "--date", "2025-03-01", "--chronic", "--organ", "skin=5"], "out of range 0–3"),
    (["transfusion", "S001", "--date", "2025-03-01", "--product", "plasma"], "must be one of rbc, platelets"),
    (["contact", "S001", "--date", "2025-03-01", "--status", "dead"], "must be one of alive"),
    (["infusion", "S001", "--date", "2025-03-01", "--cells", "6e7", "--weight-kg", "61"], "not enrolled"),
    (["enrol", "S001", "--date", "2025-03-01"], "no informed consent (IN6)"),
    (["withdraw", "S001", "--date", "2025-03-01", "--reason", " "], "--reason must not be empty"),
    (["register", "S002", "--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F", "--weight-kg", "15",
      "--transplant-date", "2025-01-10"], "out of range 20–250 kg"),
    (["register", "S 2", *REGISTER], "subject code"),
]


@pytest.mark.parametrize("args,contains", BAD, ids=[" ".join(a[:1] + [c[:20]]) for a, c in BAD])
def test_bad_input_is_one_error_line_exit_1_and_nothing_written(pgf: Pgf, args: list[str], contains: str) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.rejected("record", *args, contains=contains)


def test_missing_required_option_is_a_usage_error_on_one_line(pgf: Pgf) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.rejected("record", "lab", "S001", "--anc", "1", contains="Missing option '--date'", code=2)
    pgf.rejected("record", "biopsy", "S001", contains="No such command", code=2)


def test_infusion_rules_through_the_cli(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    infuse = ["record", "infusion", "S001", "--cells", "6.1e7", "--weight-kg", "61", "--date"]
    pgf.ok(*infuse, "2025-02-25")
    pgf.rejected(*infuse, "2025-02-28", contains="is 3 days after S001#5 (minimum 5)")
    for day in ("2025-03-04", "2025-03-11", "2025-03-18"):
        pgf.ok(*infuse, day)
    pgf.rejected(*infuse, "2025-03-25", contains="would be dose 5 of 4 planned")


def test_death_then_nothing_clinical_after_it(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "death", "S001", "--date", "2025-03-10")
    pgf.rejected("record", "lab", "S001", "--date", "2025-03-11", "--anc", "1", contains="died on 2025-03-10")
    pgf.rejected("record", "infusion", "S001", "--date", "2025-03-11", "--cells", "6e7", "--weight-kg", "61",
                 contains="died on 2025-03-10")


def test_read_commands_do_not_create_a_store(tmp_path) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/none.db")
    result = pgf("history", "S001")
    assert result.exit_code == 1 and "there is no trial store" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_bad_store_urls_are_one_line_errors(tmp_path) -> None:
    for url, contains in [("mysql://x@y/z", "unsupported database"), (f"sqlite:///{tmp_path}/no/dir/x.db", "does not exist"),
                          ("postgresql://postgres@127.0.0.1:1/test", "cannot connect to PostgreSQL")]:
        result = Pgf(url)("record", "register", "S001", *REGISTER)
        assert result.exit_code == 1 and result.stderr.startswith("Error: ") and contains in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_protocol_file_changes_the_rules(pgf: Pgf, tmp_path) -> None:
    enrol_via_cli(pgf)
    path = tmp_path / "p.toml"
    path.write_text("min_dose_gap_days = 2\ndose_interval_days = 3\n")
    infuse = ["record", "infusion", "S001", "--cells", "6.1e7", "--weight-kg", "61", "--date"]
    pgf.ok(*infuse, "2025-02-25")
    pgf.rejected(*infuse, "2025-02-28", contains="(minimum 5)")
    pgf.ok("--protocol", str(path), *infuse, "2025-02-28")
    path.write_text("min_dose_gap = 2\n")
    pgf.rejected("--protocol", str(path), *infuse, "2025-03-05", contains="unknown protocol parameter")
