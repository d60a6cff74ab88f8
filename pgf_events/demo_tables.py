"""The synthetic cohort's tables (sites, diagnoses, adverse events, infections...) and the state each
synthetic subject carries while :mod:`pgf_events.demo` draws its history."""

from __future__ import annotations

import math
import random
from datetime import date
from typing import Any

import attrs

FIRST_TRANSPLANT, LAST_TRANSPLANT = date(2024, 1, 1), date(2025, 3, 31)
SCREEN_FAILURE_SHARE = 0.15
SITES = ("PKUPH", "RJH", "SYSU1", "WCH")
DIAGNOSES = {"AML": 36, "ALL": 20, "MDS": 16, "aplastic anaemia": 12, "CML": 4, "lymphoma": 6, "myelofibrosis": 6}
DONORS = {"haploidentical": 55, "matched sibling": 25, "matched unrelated": 15, "mismatched unrelated": 5}
TYPED_OK = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{i}": "no" for i in range(1, 9)}}
# Screen-failure reasons, used in turn: (age, screening overrides).
SCREEN_FAILURES: tuple[tuple[int, dict[str, Any]], ...] = (
    (63, {}), (40, {"kps": 60}), (35, {"criterion": {"EX6": "yes"}}), (50, {"criterion": {"EX7": "yes"}}),
    (45, {"expected_survival_months": 3}), (55, {"criterion": {"EX1": "yes"}}),
)
FATAL_INFECTIONS = (  # cause of death, fatal AE term, infection (site, organism), days from onset to death
    ("septic shock", "sepsis", ("blood", "Klebsiella pneumoniae"), 4),
    ("invasive pulmonary aspergillosis", "lung infection", ("lung", "Aspergillus fumigatus"), 16),
    ("cytomegalovirus pneumonia", "lung infection", ("lung", "cytomegalovirus"), 12),
    ("septic shock", "sepsis", ("blood", "Pseudomonas aeruginosa"), 3),
)
INFECTIONS = (  # after D1: site, organism (None: not identified)
    ("blood", "Escherichia coli"), ("blood", "Klebsiella pneumoniae"), ("blood", "Staphylococcus epidermidis"),
    ("lung", "Pseudomonas aeruginosa"), ("lung", None), ("lung", "Aspergillus fumigatus"),
    ("urinary tract", "Enterococcus faecium"), ("upper respiratory tract", "respiratory syncytial virus"),
    ("gastrointestinal", "Clostridioides difficile"), ("oral mucosa", "herpes simplex virus"),
    ("skin and soft tissue", None), ("urinary tract", "BK polyomavirus"),
)
CHRONIC_PATTERNS = ({"skin": 1, "mouth": 2}, {"mouth": 1, "eyes": 1}, {"skin": 1}, {"lungs": 1},
                    {"skin": 2, "joints": 1}, {"mouth": 1}, {"eyes": 2}, {"liver": 1, "mouth": 1})
COMMON_AES = (  # term, lowest and highest grade
    ("fever", 1, 2), ("nausea", 1, 2), ("diarrhoea", 1, 2), ("fatigue", 1, 2), ("rash maculo-papular", 1, 2),
    ("headache", 1, 1), ("hypokalaemia", 1, 3), ("alanine aminotransferase increased", 1, 3),
    ("mucositis oral", 1, 2), ("hypertension", 2, 3),
)
SAES = (  # term, grade, seriousness criteria
    ("febrile neutropenia", 3, ("hospitalisation",)), ("pneumonia", 3, ("hospitalisation",)),
    ("sepsis", 4, ("life-threatening", "hospitalisation")), ("gastrointestinal haemorrhage", 3, ("hospitalisation",)),
    ("acute kidney injury", 3, ("hospitalisation", "important-medical-event")),
)
OTHER_DEATHS = (  # cause, fatal AE term, needs low platelets
    ("intracranial haemorrhage", "intracranial haemorrhage", True),
    ("multi-organ failure", "multi-organ failure", False),
    ("acute GVHD of the gut", "graft versus host disease", False),
)
WITHDRAWAL_REASONS = ("patient decision: withdrew consent for further MSC infusions",
                      "investigator decision: uncontrolled infection, MSC treatment stopped")
SOURCES = {"register": "screening log", "consent": "signed ICF", "screen": "eligibility checklist",
           "enrol": "enrolment form", "infusion": "cell therapy infusion record", "lab": "LIS report",
           "transfusion": "blood bank record", "gvhd": "GVHD assessment form", "contact": "follow-up call log"}


@attrs.define(eq=False)
class Item:
    """One command to be: a record, or a correction/void of ``target`` (resolved to a ref later)."""

    day: date
    kind: str
    fields: dict[str, Any] = attrs.field(factory=dict)
    target: Item | None = None
    reason: str | None = None


@attrs.define
class Curve:
    """A logistic rise from ``base`` to ``plateau``, centred ``start`` days after D1."""

    base: float
    plateau: float
    start: float
    width: float

    def at(self, t: int) -> float:
        return self.base + (self.plateau - self.base) / (1 + math.exp(-(t - self.start) / self.width))


@attrs.define
class Subject:
    code: str
    rng: random.Random
    transplant: date
    failure: int | None = None  # index into SCREEN_FAILURES for screen failures
    items: list[Item] = attrs.field(factory=list)
    # Set by the phases below.
    screen_day: date = FIRST_TRANSPLANT
    diagnosis: str = ""
    weight: float = 0.0
    d1: date = FIRST_TRANSPLANT
    end: date = FIRST_TRANSPLANT  # last clinical date: death or last follow-up
    obs_end: date = FIRST_TRANSPLANT  # last lab/safety date: withdrawal or ``end``
    death: date | None = None
    cause: str | None = None
    relapse: date | None = None
    withdraw_after: int | None = None  # doses given before withdrawal

    def add(self, day: date, kind: str, **fields: Any) -> Item:
        item = Item(day, kind, fields)
        self.items.append(item)
        return item

    def pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]
