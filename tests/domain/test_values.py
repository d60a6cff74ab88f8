"""Value objects: every range, unit and date rule, through the one parse path (build_record)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pgf_events.domain.errors import ValidationError
from pgf_events.domain.kinds import build_record

LAB = {"date": "2025-03-01"}


def rejects(kind: str, fields: dict, contains: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_record(kind, fields)
    assert contains in str(err.value)


@pytest.mark.parametrize("field,low,high", [("anc", 0, 100), ("plt", 0, 2000), ("hb", 20, 250), ("bilirubin", 0, 1000)])
def test_lab_value_range_edges_are_accepted(field: str, low: float, high: float) -> None:
    unit = {"bilirubin_unit": "µmol/L"} if field == "bilirubin" else {}
    assert getattr(build_record("lab", {**LAB, field: low, **unit}), field) == low
    assert getattr(build_record("lab", {**LAB, field: high, **unit}), field) == high


@pytest.mark.parametrize("field,value", [("anc", 100.01), ("anc", -0.1), ("plt", 2001), ("hb", 251), ("hb", 19.9),
                                         ("bilirubin", 1001)])
def test_lab_value_out_of_range_is_rejected(field: str, value: float) -> None:
    unit = {"bilirubin_unit": "µmol/L"} if field == "bilirubin" else {}
    rejects("lab", {**LAB, field: value, **unit}, "out of range")


def test_hb_in_g_per_dl_is_converted_to_g_per_l() -> None:
    assert build_record("lab", {**LAB, "hb": "7.2", "hb_unit": "g/dL"}).hb == 72.0


def test_hb_that_looks_like_g_per_dl_without_the_unit_is_rejected_with_a_hint() -> None:
    rejects("lab", {**LAB, "hb": 9.5}, "add --hb-unit g/dL")


def test_bilirubin_in_mg_per_dl_is_converted_to_umol_per_l() -> None:
    assert build_record("lab", {**LAB, "bilirubin": 2, "bilirubin_unit": "mg/dL"}).bilirubin == pytest.approx(34.2)


@pytest.mark.parametrize("unit_field,unit", [("hb_unit", "mmol/L"), ("bilirubin_unit", "mg/L")])
def test_unknown_unit_is_rejected(unit_field: str, unit: str) -> None:
    rejects("lab", {**LAB, "hb": 100, "bilirubin": 10, unit_field: unit}, "must be one of")


def test_lab_with_no_value_is_rejected() -> None:
    rejects("lab", LAB, "at least one value")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400", "abc", "", True, None, [1]])
def test_non_finite_or_non_numeric_values_are_rejected(bad: object) -> None:
    fields = {**LAB, "anc": bad}
    if bad is None:
        rejects("lab", fields, "at least one value")
    else:
        rejects("lab", fields, "--anc")


@pytest.mark.parametrize("bad,contains", [("2025-02-30", "not a real calendar date"), ("2025-13-01", "not a real"),
                                          ("01/03/2025", "must be a date"), ("1899-12-31", "before 1900"),
                                          ("2025-3-1", "must be a date")])
def test_impossible_or_malformed_dates_are_rejected(bad: str, contains: str) -> None:
    rejects("lab", {"date": bad, "anc": 1}, contains)


def test_weight_and_cells_are_checked() -> None:
    base = {"date": "2025-03-01", "cells": 6e7, "weight_kg": 61}
    assert build_record("infusion", base).cells_per_kg == pytest.approx(6e7 / 61)
    rejects("infusion", {**base, "weight_kg": 19}, "out of range 20–250 kg")
    rejects("infusion", {**base, "weight_kg": 251}, "out of range")
    rejects("infusion", {**base, "cells": 0}, "--cells")
    rejects("infusion", {**base, "cells": -5e7}, "--cells")


@pytest.mark.parametrize("kps", [0, 60, 70, 100])
def test_kps_in_steps_of_ten_is_accepted(kps: int) -> None:
    assert build_record("screen", {"date": "2025-02-20", "kps": kps}).kps == kps


@pytest.mark.parametrize("kps,contains", [(75, "steps of 10"), (110, "out of range"), (-10, "out of range"),
                                          ("7.5", "whole number")])
def test_bad_kps_is_rejected(kps: object, contains: str) -> None:
    rejects("screen", {"date": "2025-02-20", "kps": kps}, contains)


@pytest.mark.parametrize("grade", [0, 6, "2.5"])
def test_ctcae_grade_outside_1_to_5_is_rejected(grade: object) -> None:
    rejects("ae", {"onset": "2025-03-01", "term": "rash", "grade": grade}, "--grade")


def test_derived_criteria_cannot_be_typed() -> None:
    for code in ("IN2", "IN3", "IN6"):
        rejects("screen", {"date": "2025-02-20", "criterion": {code: "yes"}}, "derived")


def test_criteria_accept_list_or_mapping_and_unknown_codes_are_rejected() -> None:
    as_list = build_record("screen", {"date": "2025-02-20", "criterion": ["in1=yes", "EX6=no"]})
    as_map = build_record("screen", {"date": "2025-02-20", "criterion": {"IN1": "yes", "EX6": "no"}})
    assert as_list == as_map and as_list.criterion == {"EX6": False, "IN1": True}
    rejects("screen", {"date": "2025-02-20", "criterion": {"EX9": "no"}}, "unknown criterion")
    rejects("screen", {"date": "2025-02-20", "criterion": {"IN1": "maybe"}}, "yes or no")


def test_serious_adverse_event_fields() -> None:
    ae = build_record("ae", {"onset": "2025-03-01", "term": "sepsis", "grade": 4,
                             "serious": "life-threatening,hospitalisation", "aware": "2025-03-02T08:15"})
    assert ae.serious == ("hospitalisation", "life-threatening")
    assert ae.aware == datetime(2025, 3, 2, 8, 15, tzinfo=UTC)
    rejects("ae", {"onset": "2025-03-01", "term": "x", "grade": 3, "serious": "badly"}, "must be one of")
    rejects("ae", {"onset": "2025-03-05", "term": "x", "grade": 3, "end": "2025-03-01"}, "--end is before --onset")
    rejects("ae", {"onset": "2025-03-05", "term": "x", "grade": 5}, "fatal")


def test_aware_with_offset_is_stored_in_utc() -> None:
    ae = build_record("ae", {"onset": "2025-03-01", "term": "x", "grade": 3, "aware": "2025-03-02T08:15+08:00"})
    assert ae.aware == datetime(2025, 3, 2, 0, 15, tzinfo=UTC)


def test_gvhd_acute_and_chronic_are_exclusive() -> None:
    acute = build_record("gvhd", {"date": "2025-03-01", "skin_bsa": 30, "bilirubin": 2, "bilirubin_unit": "mg/dL"})
    assert acute.bilirubin == pytest.approx(34.2) and not acute.chronic
    chronic = build_record("gvhd", {"date": "2025-09-01", "chronic": True, "organ": ["skin=1", "lungs=2"]})
    assert chronic.organ == {"lungs": 2, "skin": 1}
    rejects("gvhd", {"date": "2025-03-01"}, "needs --skin-bsa")
    rejects("gvhd", {"date": "2025-03-01", "chronic": True}, "--organ")
    rejects("gvhd", {"date": "2025-03-01", "chronic": True, "organ": {"skin": 4}}, "out of range 0–3")
    rejects("gvhd", {"date": "2025-03-01", "chronic": True, "organ": {"spleen": 1}}, "must be one of")
    rejects("gvhd", {"date": "2025-03-01", "organ": {"skin": 1}}, "need --chronic")
    rejects("gvhd", {"date": "2025-03-01", "chronic": True, "skin_bsa": 10, "organ": {"skin": 1}}, "not acute")
    rejects("gvhd", {"date": "2025-03-01", "skin_bsa": 101}, "out of range")


def test_registration_checks() -> None:
    base = {"site": "PKU", "birth_date": "1980-02-03", "sex": "f", "weight_kg": 61, "transplant_date": "2025-01-10"}
    reg = build_record("register", base)
    assert reg.sex == "F" and reg.birth_date == date(1980, 2, 3)
    rejects("register", {**base, "sex": "X"}, "M, F")
    rejects("register", {**base, "transplant_date": "1979-01-01"}, "before --birth-date")
    rejects("register", {k: v for k, v in base.items() if k != "site"}, "needs --site")


def test_unknown_options_and_kinds_are_rejected() -> None:
    rejects("lab", {**LAB, "anc": 1, "neutrophils": 2}, "has no option --neutrophils")
    rejects("biopsy", {}, "unknown record kind")


@pytest.mark.parametrize("text", ["", "   ", "a\x00b", "x" * 600])
def test_bad_free_text_is_rejected(text: str) -> None:
    rejects("withdraw", {"date": "2025-03-01", "reason": text}, "--reason")


def test_correction_is_revalidated_and_holds_only_changed_fields() -> None:
    lab = build_record("lab", {**LAB, "anc": 0.4, "plt": 18})
    new, diff = lab.corrected({"anc": "0.6", "plt": "18"})
    assert diff == {"anc": 0.6} and new.plt == 18
    _, diff = lab.corrected({"hb": "7", "hb_unit": "g/dL"})
    assert diff == {"hb": 70.0, "hb_as_entered": "7 g/dL"}  # v2: the value as entered follows it
    with pytest.raises(ValidationError, match="out of range"):
        lab.corrected({"anc": "500"})
    with pytest.raises(ValidationError, match="has no field kps"):
        lab.corrected({"kps": "80"})
