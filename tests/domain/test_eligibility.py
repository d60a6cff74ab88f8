"""Eligibility as a pure function: derived IN2/IN3/IN6, pending vs ineligible, overrides by later screens."""

from __future__ import annotations

from datetime import date

from pgf_events.domain.rules.eligibility import ConsentFacts, ScreeningFacts, age_in_years, assess
from pgf_events.protocol import Protocol

P = Protocol()
BIRTH = date(1980, 2, 3)
TYPED_OK = {"IN1": True, "IN4": True, "IN5": True, **{f"EX{n}": False for n in range(1, 9)}}
CONSENT = [ConsentFacts(day=date(2025, 2, 18), ref="S001#2")]


def screen(**kw: object) -> ScreeningFacts:
    defaults: dict = {"day": date(2025, 2, 20), "ref": "S001#3", "kps": 80, "expected_survival_months": 12, "answers": TYPED_OK}
    return ScreeningFacts(**{**defaults, **kw})


def test_everything_met_is_eligible() -> None:
    result = assess(BIRTH, [screen()], CONSENT, P)
    assert result.status == "eligible" and result.unmet == () and result.unassessed == ()
    assert result.refs == ("S001#3", "S001#2") and result.protocol_version == P.version


def test_nothing_recorded_is_pending_on_every_criterion() -> None:
    result = assess(BIRTH, [], [], P)
    assert result.status == "pending" and len(result.unassessed) == 14


def test_missing_consent_keeps_it_pending_on_in6() -> None:
    result = assess(BIRTH, [screen()], [], P)
    assert result.status == "pending" and result.unassessed == ("IN6",)


def test_a_failed_criterion_is_ineligible_even_while_others_are_unassessed() -> None:
    result = assess(BIRTH, [screen(answers={"EX6": True})], [], P)
    assert result.status == "ineligible" and result.unmet == ("EX6",)
    assert "EX6" in result.reasons


def test_age_boundaries_are_inclusive() -> None:
    assert age_in_years(date(1965, 2, 20), date(2025, 2, 20)) == 60
    assert age_in_years(date(1965, 2, 19), date(2025, 2, 20)) == 60
    assert age_in_years(date(1965, 2, 21), date(2025, 2, 20)) == 59
    assert assess(date(1964, 2, 21), [screen()], CONSENT, P).status == "eligible"  # 60 on 2025-02-20
    assert assess(date(1964, 2, 20), [screen()], CONSENT, P).unmet == ("IN2",)  # 61 today
    assert assess(date(2007, 2, 20), [screen()], CONSENT, P).status == "eligible"  # 18 today
    assert assess(date(2007, 2, 21), [screen()], CONSENT, P).unmet == ("IN2",)  # 17


def test_kps_must_be_above_60_and_survival_above_3_months() -> None:
    assert assess(BIRTH, [screen(kps=60)], CONSENT, P).unmet == ("IN3",)
    assert assess(BIRTH, [screen(kps=70)], CONSENT, P).status == "eligible"
    assert assess(BIRTH, [screen(expected_survival_months=3)], CONSENT, P).unmet == ("IN3",)
    assert assess(BIRTH, [screen(expected_survival_months=3.5)], CONSENT, P).status == "eligible"


def test_in3_is_unassessed_until_both_kps_and_survival_are_known_unless_one_fails() -> None:
    assert "IN3" in assess(BIRTH, [screen(expected_survival_months=None)], CONSENT, P).unassessed
    assert assess(BIRTH, [screen(kps=50, expected_survival_months=None)], CONSENT, P).unmet == ("IN3",)


def test_a_later_screening_overrides_an_earlier_answer() -> None:
    first = screen(answers={**TYPED_OK, "EX6": True})
    later = screen(day=date(2025, 2, 27), ref="S001#5", answers={"EX6": False})
    assert assess(BIRTH, [first, later], CONSENT, P).status == "eligible"
    assert assess(BIRTH, [later, first], CONSENT, P).status == "eligible"  # order of the list does not matter


def test_thresholds_come_from_the_protocol() -> None:
    strict = Protocol(kps_min_exclusive=80, age_max_years=40)
    result = assess(BIRTH, [screen()], CONSENT, strict)
    assert set(result.unmet) == {"IN2", "IN3"}
