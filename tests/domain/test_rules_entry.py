"""Rules at entry as pure functions: impossibilities and deviations of a record against its prefix,
and of a whole stream (every record against the records before it)."""

from __future__ import annotations

from datetime import date

from pgf_events.domain.kinds import build_record
from pgf_events.domain.rules import entry
from pgf_events.domain.rules.entry import Item, Prior
from pgf_events.protocol import DEFAULT_PROTOCOL as P

TODAY = date(2026, 1, 15)
REG = {"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61, "transplant_date": "2025-01-10"}
OK_CRITERIA = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{i}": "no" for i in range(1, 9)}}


def item(n: int, kind: str, acknowledged: tuple[str, ...] = (), **fields) -> Item:
    return Item(f"S001#{n}", build_record(kind, fields), frozenset(acknowledged))


def enrolled() -> list[Item]:
    return [
        item(1, "register", **REG),
        item(2, "consent", date="2025-02-18"),
        item(3, "screen", date="2025-02-20", kps=80, expected_survival_months=12, criterion=OK_CRITERIA),
        item(4, "enrol", date="2025-02-24"),
    ]


def infusion(n: int, day: str, cells: float = 6.1e7, acknowledged: tuple[str, ...] = ()) -> Item:
    return item(n, "infusion", acknowledged, date=day, cells=cells, weight_kg=61)


def findings(prior: list[Item], new: Item) -> list[entry.Finding]:
    return entry.check_entry(Prior(prior), new, P, TODAY)


def kinds(found: list[entry.Finding]) -> list[tuple[str, bool]]:
    return [(f.kind, f.impossible) for f in found]


def test_a_conforming_course_has_no_findings() -> None:
    stream = enrolled() + [infusion(5, "2025-02-25"), infusion(6, "2025-03-04"), infusion(7, "2025-03-11"),
                           infusion(8, "2025-03-18")]
    assert entry.check_stream(stream, P, TODAY) == []


def test_a_dose_three_days_after_the_previous_one_names_the_gap_and_the_flag() -> None:
    found = findings(enrolled() + [infusion(5, "2025-02-25")], infusion(6, "2025-02-28"))
    assert kinds(found) == [("dose_gap", False), ("dose_window", False)]
    assert found[0].message == "the infusion on 2025-02-28 is 3 days after S001#5 (minimum 5)"
    assert entry.refusal(found).endswith(': record it with --deviation "..." if it happened')


def test_a_fifth_dose_is_a_deviation() -> None:
    stream = enrolled() + [infusion(5 + k, d) for k, d in enumerate(("2025-02-25", "2025-03-04", "2025-03-11",
                                                                     "2025-03-18"))]
    found = findings(stream, infusion(9, "2025-03-25"))
    assert kinds(found) == [("extra_dose", False)]
    assert "dose 5 of 4 planned" in found[0].message


def test_a_tenfold_dose_is_outside_tolerance() -> None:
    found = findings(enrolled(), infusion(5, "2025-02-25", cells=6.1e8))
    assert kinds(found) == [("dose_tolerance", False)]
    assert "1e+07 cells/kg" in found[0].message and "+900%" in found[0].message


def test_the_tolerance_edge_is_inside() -> None:
    assert findings(enrolled(), infusion(5, "2025-02-25", cells=1.1e6 * 61)) == []


def test_a_late_dose_is_outside_its_window() -> None:
    found = findings(enrolled() + [infusion(5, "2025-02-25")], infusion(6, "2025-03-07"))
    assert kinds(found) == [("dose_window", False)]
    assert "dose 2, 3 days after its target 2025-03-04" in found[0].message


def test_enrolment_of_an_ineligible_patient_is_a_deviation_and_without_consent_impossible() -> None:
    stream = enrolled()
    ineligible = stream[:2] + [item(3, "screen", date="2025-02-20", kps=50, expected_survival_months=12,
                                    criterion=OK_CRITERIA)]
    assert kinds(findings(ineligible, stream[3])) == [("ineligible_enrolment", False)]
    no_consent = [stream[0], stream[2]]
    assert kinds(findings(no_consent, stream[3])) == [("no_consent", True)]


def test_impossible_facts() -> None:
    stream = enrolled()
    assert kinds(findings(stream[:3], infusion(5, "2025-02-25"))) == [("not_enrolled", True)]
    assert kinds(findings(stream, infusion(5, "2025-02-23"))) == [("before_enrolment", True)]
    dead = stream + [item(5, "death", date="2025-03-01")]
    assert kinds(findings(dead, item(6, "lab", date="2025-03-02", anc=1))) == [("after_death", True)]
    labs = stream + [item(5, "lab", date="2025-03-12", anc=1)]
    found = findings(labs, item(6, "death", date="2025-03-01"))
    assert kinds(found) == [("after_death", True)]
    assert found[0].message == "S001#5 (lab) has date 2025-03-12, after the death date 2025-03-01"
    assert kinds(findings(stream, item(5, "lab", date="2026-02-01", anc=1))) == [("future_date", True)]
    assert kinds(findings(stream, item(5, "lab", date="1970-01-01", anc=1))) == [("before_birth", True)]


def test_a_stream_is_checked_as_if_entered_record_by_record() -> None:
    # Enrolment moved after the infusions: each infusion is before the enrolment.
    stream = enrolled() + [infusion(5, "2025-02-25"), infusion(6, "2025-03-04")]
    moved = stream[:3] + [item(4, "enrol", date="2025-03-10")] + stream[4:]
    assert kinds(entry.check_stream(moved, P, TODAY)) == [("before_enrolment", True)] * 2
    # The enrolment voided: orphaned doses.
    assert kinds(entry.check_stream(stream[:3] + stream[4:], P, TODAY)) == [("not_enrolled", True)] * 2


def test_acknowledged_deviations_are_not_asked_again() -> None:
    stream = enrolled() + [infusion(5, "2025-02-25"), infusion(6, "2025-02-28", acknowledged=("dose_gap",))]
    found = entry.check_stream(stream, P, TODAY)
    assert [f.kind for f in entry.unacknowledged(found, stream)] == ["dose_window"]


def test_an_eligibility_fact_changed_after_enrolment() -> None:
    stream = enrolled()
    assert entry.eligibility_changed(stream, "S001#3").kind == "eligibility_corrected"
    assert entry.eligibility_changed(stream[:3], "S001#3") is None  # not enrolled yet
    assert entry.eligibility_changed(stream + [item(5, "screen", date="2025-03-01", kps=90)], "S001#5") is None
