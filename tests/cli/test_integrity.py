"""Issue 13, every example, through the real CLI on SQLite and PostgreSQL: impossible facts refused,
protocol deviations accepted only with --deviation, corrections and voids re-checked as a whole.
Each refusal: exit 1, one ``Error:`` line naming the problem, the store unchanged (Pgf.rejected)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Pgf, enrol_via_cli, fingerprint

INFUSE = ["record", "infusion", "S001", "--cells", "6.1e7", "--weight-kg", "61", "--date"]
FLAG_HINT = 'record it with --deviation "..." if it happened'


def treated(pgf: Pgf) -> None:
    """S001#1 register, #2 consent, #3 screen, #4 enrol 02-24, #5/#6 infusions 02-25 and 03-04,
    #7/#8 labs 03-05 and 03-12, #9 death 03-15."""
    enrol_via_cli(pgf)
    pgf.ok(*INFUSE, "2025-02-25")
    pgf.ok(*INFUSE, "2025-03-04")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-05", "--anc", "0.4")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-12", "--anc", "0.6")
    pgf.ok("record", "death", "S001", "--date", "2025-03-15")


def deviations(pgf: Pgf) -> list[dict]:
    return json.loads(pgf.ok("report", "deviations", "--json").stdout)["rows"]


# ------------------------------------------------------------------ deviations at entry


def test_an_infusion_three_days_after_the_previous_needs_a_deviation(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any)
    pgf_any.ok(*INFUSE, "2025-02-25")
    result = pgf_any.rejected(*INFUSE, "2025-02-28",
                              contains="the infusion on 2025-02-28 is 3 days after S001#5 (minimum 5)")
    assert result.stderr.strip().endswith(FLAG_HINT)
    assert pgf_any.ok(*INFUSE, "2025-02-28", "--deviation", "patient travelling; dose given early", "-q").stdout == "S001#6\n"
    rows = deviations(pgf_any)
    assert {(r["kind"], r["ref"], r["status"], r["reason"], r["acknowledged_by"]) for r in rows} == {
        ("dose_gap", "S001#6", "acknowledged", "patient travelling; dose given early", "coordinator1"),
        ("dose_window", "S001#6", "acknowledged", "patient travelling; dose given early", "coordinator1"),
    }


def test_a_tenfold_dose_needs_a_deviation(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any)
    ten_x = ["record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e8", "--weight-kg", "61"]
    pgf_any.rejected(*ten_x, contains="is 1e+07 cells/kg (6.1e+08 cells at 61 kg), +900% from the planned 1e+06")
    pgf_any.ok(*ten_x, "--deviation", "pharmacy released the wrong bag; SAE reported")
    assert [r["kind"] for r in deviations(pgf_any)] == ["dose_tolerance"]


def test_a_fifth_dose_needs_a_deviation(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any)
    for day in ("2025-02-25", "2025-03-04", "2025-03-11", "2025-03-18"):
        pgf_any.ok(*INFUSE, day)
    pgf_any.rejected(*INFUSE, "2025-03-25", contains="would be dose 5 of 4 planned")


def test_enrolling_an_ineligible_patient_needs_a_deviation(pgf_any: Pgf) -> None:
    pgf_any.ok("record", "register", "S001", "--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F",
               "--weight-kg", "61", "--transplant-date", "2025-01-10")
    pgf_any.ok("record", "consent", "S001", "--date", "2025-02-18")
    pgf_any.ok("record", "screen", "S001", "--date", "2025-02-20", "--kps", "50")
    pgf_any.rejected("record", "enrol", "S001", "--date", "2025-02-24", contains="is not eligible")
    pgf_any.ok("record", "enrol", "S001", "--date", "2025-02-24", "--deviation", "PI waiver, sponsor approved")
    assert [r["kind"] for r in deviations(pgf_any)] == ["ineligible_enrolment"]


def test_a_deviation_flag_on_a_conforming_record_is_refused(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.rejected(*INFUSE, "2025-02-25", "--deviation", "just in case", contains="this command makes none")


# ------------------------------------------------------------------ corrections and voids re-checked


def test_a_correction_putting_two_infusions_one_day_apart_needs_a_deviation(pgf_any: Pgf) -> None:
    treated(pgf_any)
    args = ["correct", "S001#5", "--set", "date=2025-03-03", "--reason", "date misread"]
    result = pgf_any.rejected(*args, contains="with this correction, S001#6: the infusion on 2025-03-04 is 1 day "
                                              "after S001#5 (minimum 5)")
    assert FLAG_HINT in result.stderr
    pgf_any.ok(*args, "--deviation", "second dose given the next day by mistake")
    assert {(r["kind"], r["ref"], r["acknowledged_in"]) for r in deviations(pgf_any)} >= {
        ("dose_gap", "S001#6", "S001#10")}


def test_moving_the_enrolment_after_the_infusions_is_refused(pgf_any: Pgf) -> None:
    treated(pgf_any)
    args = ["correct", "S001#4", "--set", "date=2025-03-10", "--reason", "wrong date"]
    pgf_any.rejected(*args, contains="with this correction, S001#5: the infusion date 2025-02-25 is before "
                                     "enrolment on 2025-03-10")
    pgf_any.rejected(*args, "--deviation", "anyway", contains="is before enrolment")  # impossible: no flag helps


def test_moving_the_death_before_existing_labs_is_refused(pgf_any: Pgf) -> None:
    treated(pgf_any)
    pgf_any.rejected("correct", "S001#9", "--set", "date=2025-03-01", "--reason", "typo",
                     contains="with this correction, S001#6 (infusion) has date 2025-03-04, after the death date "
                              "2025-03-01")


def test_voiding_an_enrolment_with_infusions_is_refused(pgf_any: Pgf) -> None:
    treated(pgf_any)
    pgf_any.rejected("void", "S001#4", "--reason", "entered on the wrong patient",
                     contains="with this void, S001#5: patient S001 is not enrolled; infusions need an enrolment")


def test_a_hundredfold_dose_by_correction_needs_a_deviation(pgf_any: Pgf) -> None:
    treated(pgf_any)
    args = ["correct", "S001#5", "--set", "cells=6.1e9", "--reason", "re-read from the pharmacy sheet"]
    pgf_any.rejected(*args, contains="with this correction, the infusion on 2025-02-25 is 1e+08 cells/kg")
    pgf_any.ok(*args, "--deviation", "overdose confirmed by pharmacy; SAE reported")


def test_correcting_an_eligibility_fact_after_enrolment_needs_a_deviation(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any)
    args = ["correct", "S001#3", "--set", "kps=90", "--reason", "source verification"]
    pgf_any.rejected(*args, contains="is an eligibility fact of the enrolment S001#4")
    pgf_any.ok(*args, "--deviation", "KPS re-read from the source after enrolment")
    assert [r["kind"] for r in deviations(pgf_any)] == ["eligibility_corrected"]


def test_a_conforming_correction_needs_no_flag(pgf_any: Pgf) -> None:
    treated(pgf_any)
    pgf_any.ok("correct", "S001#6", "--set", "date=2025-03-05", "--reason", "date misread")
    pgf_any.ok("correct", "S001#7", "--set", "anc=0.45", "--reason", "transcription")


# ------------------------------------------------------------------ units and contradictions


def test_contradictory_repeated_criterion_is_refused(pgf_any: Pgf) -> None:
    pgf_any.ok("record", "register", "S001", "--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F",
               "--weight-kg", "61", "--transplant-date", "2025-01-10")
    pgf_any.rejected("record", "screen", "S001", "--date", "2025-02-20", "--criterion", "IN1=yes",
                     "--criterion", "IN1=no", contains="--criterion IN1 is given twice with different answers")
    pgf_any.ok("record", "screen", "S001", "--date", "2025-02-20", "--criterion", "IN1=yes", "--criterion", "in1=YES")


def test_bilirubin_needs_its_unit(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any)
    pgf_any.rejected("record", "lab", "S001", "--date", "2025-03-01", "--bilirubin", "2.5",
                     contains="--bilirubin needs its unit: add --bilirubin-unit µmol/L or --bilirubin-unit mg/dL")
    pgf_any.ok("record", "lab", "S001", "--date", "2025-03-01", "--bilirubin", "2.5", "--bilirubin-unit", "mg/dL")
    # A correction of another field keeps the stored (standardised) unit.
    pgf_any.ok("correct", "S001#5", "--set", "date=2025-03-02", "--reason", "sample date")


def test_counts_per_microlitre_are_refused_with_the_conversion(pgf_any: Pgf) -> None:
    enrol_via_cli(pgf_any)
    lab = ["record", "lab", "S001", "--date", "2025-03-01"]
    pgf_any.rejected(*lab, "--anc", "500", contains="enter 0.5 (500/µL = 0.5 x10^9/L)")
    pgf_any.rejected(*lab, "--plt", "18000", contains="enter 18 (18000/µL = 18 x10^9/L)")


def test_refusals_through_import_name_the_line(pgf: Pgf, tmp_path: Path) -> None:
    treated(pgf)
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"record": "lab", "subject": "S001", "date": "2025-03-13", "anc": 0.7}) + "\n" +
                    json.dumps({"record": "infusion", "subject": "S001", "date": "2025-03-06", "cells": 6.1e7,
                                "weight_kg": 61}) + "\n")
    result = pgf("import", str(path))
    assert result.exit_code == 1 and "line 2: the infusion on 2025-03-06 is 2 days after S001#6" in result.stderr
    path.write_text(json.dumps({"record": "lab", "subject": "S001", "date": "2025-03-13", "anc": 0.7}) + "\n" +
                    json.dumps({"record": "infusion", "subject": "S001", "date": "2025-03-08", "cells": 6.1e7,
                                "weight_kg": 61, "deviation": "given although the previous was late"}) + "\n")
    assert pgf("import", str(path)).exit_code == 0


# ------------------------------------------------------------------ related changes as one unit


def _lines(*objs: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_related_changes_consistent_only_together_go_in_one_import(pgf_any: Pgf, tmp_path: Path) -> None:
    """The enrolment was really on 03-01 and both infusions a week later than entered: one change alone
    would put an infusion before the enrolment, so each is refused alone and all are accepted together."""
    enrol_via_cli(pgf_any)
    pgf_any.ok(*INFUSE, "2025-02-25")
    pgf_any.ok(*INFUSE, "2025-03-04")
    pgf_any.rejected("correct", "S001#4", "--set", "date=2025-03-01", "--reason", "wrong visit",
                     contains="is before enrolment on 2025-03-01")
    path = tmp_path / "fix.jsonl"
    path.write_text(_lines(
        {"record": "correct", "ref": "S001#4", "set": {"date": "2025-03-01"}, "reason": "wrong visit"},
        {"record": "correct", "ref": "S001#5", "set": {"date": "2025-03-04"}, "reason": "wrong visit"},
        {"record": "correct", "ref": "S001#6", "set": {"date": "2025-03-11"}, "reason": "wrong visit"},
    ))
    pgf_any.ok("import", str(path))
    status = json.loads(pgf_any.ok("status", "S001", "--json").stdout)
    assert status["dosing"]["given"] == 2 and status["dosing"]["on_time"] == 2


def test_a_unit_of_changes_that_ends_inconsistent_is_refused_whole(pgf_any: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(pgf_any)
    pgf_any.ok(*INFUSE, "2025-02-25")
    pgf_any.ok(*INFUSE, "2025-03-04")
    path = tmp_path / "fix.jsonl"
    path.write_text(_lines(
        {"record": "correct", "ref": "S001#4", "set": {"date": "2025-03-01"}, "reason": "wrong visit"},
        {"record": "correct", "ref": "S001#6", "set": {"date": "2025-03-11"}, "reason": "wrong visit"},
    ))
    before = fingerprint(pgf_any.url)
    result = pgf_any("import", str(path))
    assert result.exit_code == 1
    assert ("line 2: with these changes, S001#5: the infusion date 2025-02-25 is before enrolment on 2025-03-01"
            in result.stderr)
    assert fingerprint(pgf_any.url) == before


def test_a_unit_of_changes_making_a_deviation_needs_one_acknowledgement(pgf_any: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(pgf_any)
    pgf_any.ok(*INFUSE, "2025-02-25")
    pgf_any.ok(*INFUSE, "2025-03-04")
    lines = [{"record": "correct", "ref": "S001#5", "set": {"date": "2025-02-27"}, "reason": "wrong visit"},
             {"record": "correct", "ref": "S001#6", "set": {"date": "2025-03-03"}, "reason": "wrong visit"}]
    path = tmp_path / "fix.jsonl"
    path.write_text(_lines(*lines))
    result = pgf_any("import", str(path))
    assert result.exit_code == 1 and "is 4 days after S001#5 (minimum 5)" in result.stderr
    path.write_text(_lines(lines[0], {**lines[1], "deviation": "both doses moved; second one day early"}))
    pgf_any.ok("import", str(path))
    rows = deviations(pgf_any)
    assert {(r["kind"], r["ref"], r["acknowledged_in"]) for r in rows} >= {("dose_gap", "S001#6", "S001#8")}


def test_a_registration_is_never_a_deviation(pgf: Pgf) -> None:
    pgf.rejected("record", "register", "S001", "--site", "PKU", "--birth-date", "1980-02-03", "--sex", "F",
                 "--weight-kg", "61", "--transplant-date", "2025-01-10", "--deviation", "late registration",
                 contains="this command makes none")
