"""Eligibility (docs/rules.md "Eligibility"): IN1–IN6 and EX1–EX8 as a pure function.

Typed criteria come from screening records (a later screening overrides an earlier answer for
the same code). IN2 (age 18–60 inclusive at the screening date), IN3 (KPS > 60 and expected
survival > 3 months) and IN6 (consent) are derived from recorded facts. Any failed criterion
makes the patient ineligible even while others are unassessed; otherwise pending until every
criterion is assessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import attrs

from pgf_events.protocol import Protocol

INCLUSION = ("IN1", "IN2", "IN3", "IN4", "IN5", "IN6")
EXCLUSION = ("EX1", "EX2", "EX3", "EX4", "EX5", "EX6", "EX7", "EX8")
ALL_CRITERIA = INCLUSION + EXCLUSION


@attrs.frozen
class ScreeningFacts:
    """One screening as recorded: its date, KPS, prognosis and typed answers (True = statement true)."""

    day: date
    ref: str
    kps: int | None = None
    expected_survival_months: float | None = None
    answers: dict[str, bool] = attrs.field(factory=dict)


@attrs.frozen
class ConsentFacts:
    day: date
    ref: str


@attrs.frozen
class Eligibility:
    status: str  # "pending" | "eligible" | "ineligible"
    unmet: tuple[str, ...]  # criteria that fail
    unassessed: tuple[str, ...]  # criteria with no answer yet
    reasons: dict[str, str]  # code -> why it failed (derived criteria explain themselves)
    refs: tuple[str, ...]  # events the assessment came from
    protocol_version: str


def age_in_years(birth: date, on: date) -> int:
    """Completed years of age on a day (a birthday counts on the day itself)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def assess(
    birth_date: date,
    screenings: Sequence[ScreeningFacts],
    consents: Sequence[ConsentFacts],
    params: Protocol,
) -> Eligibility:
    met: dict[str, bool] = {}
    reasons: dict[str, str] = {}
    refs: list[str] = []
    ordered = sorted(screenings, key=lambda s: (s.day, _ref_version(s.ref)))
    kps: tuple[int, str] | None = None
    survival: tuple[float, str] | None = None
    for s in ordered:
        refs.append(s.ref)
        for code, statement_true in s.answers.items():
            # Inclusion: the statement being true means met. Exclusion: true means excluded.
            met[code] = statement_true if code.startswith("IN") else not statement_true
            if not met[code]:
                reasons[code] = f"{code} answered {'no' if code.startswith('IN') else 'yes'} ({s.ref})"
            else:
                reasons.pop(code, None)
        if s.kps is not None:
            kps = (s.kps, s.ref)
        if s.expected_survival_months is not None:
            survival = (s.expected_survival_months, s.ref)

    if ordered:
        last = ordered[-1]
        age = age_in_years(birth_date, last.day)
        met["IN2"] = params.age_min_years <= age <= params.age_max_years
        if not met["IN2"]:
            reasons["IN2"] = (
                f"age {age} at screening on {last.day} is outside "
                f"{params.age_min_years}–{params.age_max_years}"
            )

    in3_failures = []
    if kps is not None and kps[0] <= params.kps_min_exclusive:
        in3_failures.append(f"KPS {kps[0]} is not above {params.kps_min_exclusive} ({kps[1]})")
    if survival is not None and survival[0] <= params.expected_survival_min_months_exclusive:
        in3_failures.append(
            f"expected survival {survival[0]:g} months is not above "
            f"{params.expected_survival_min_months_exclusive:g} ({survival[1]})"
        )
    if in3_failures:
        met["IN3"] = False
        reasons["IN3"] = "; ".join(in3_failures)
    elif kps is not None and survival is not None:
        met["IN3"] = True

    if consents:
        met["IN6"] = True
        refs.extend(c.ref for c in consents)

    unmet = tuple(c for c in ALL_CRITERIA if met.get(c) is False)
    unassessed = tuple(c for c in ALL_CRITERIA if c not in met)
    status = "ineligible" if unmet else ("pending" if unassessed else "eligible")
    return Eligibility(
        status=status,
        unmet=unmet,
        unassessed=unassessed,
        reasons={c: reasons[c] for c in unmet},
        refs=tuple(refs),
        protocol_version=params.version,
    )


def _ref_version(ref: str) -> int:
    """Order same-day screenings by the order they were recorded (``S001#7`` -> 7)."""
    _, _, number = ref.rpartition("#")
    return int(number) if number.isdigit() else 0
