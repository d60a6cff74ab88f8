"""The eligibility report (CONSORT counts): row and summary over every registered patient."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pgf_events.domain.rules.eligibility import ALL_CRITERIA
from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "site", "sex", "transplant_date", "eligibility", "screened", "screening_date", "consented",
    "consent_date", "enrolled", "enrolment_date", "pgf_type", "treated", "course_completed", "withdrawn",
    "withdrawal_date", "withdrawal_reason", "alive", "death_date",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "site", "status", "unmet", "consented", "enrolled", "treated", "completed",
    "withdrawn", "died",
)
HEADERS: dict[str, str] = {}


def row(s: Row) -> dict[str, Any]:
    e = s["eligibility"]
    return {"subject": s["subject"], "site": s["site"], "status": e["status"], "unmet": e["unmet"],
            "unassessed": e["unassessed"], "screened": s["screened"], "consented": s["consented"],
            "enrolled": s["enrolled"], "enrolment_date": s["enrolment_date"], "treated": s["treated"],
            "completed": s["course_completed"], "withdrawn": s["withdrawn"], "died": not s["alive"],
            "refs": e["refs"]}

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    status = Counter(s["eligibility"]["status"] for s in rows)
    failed = Counter(c for s in rows for c in s["eligibility"]["unmet"])
    enrolled = [s for s in rows if s["enrolled"]]
    return {
        "registered": len(rows),
        "screened": sum(1 for s in rows if s["screened"]),
        "eligible": status["eligible"], "pending": status["pending"], "ineligible": status["ineligible"],
        "ineligible_criteria": {c: failed[c] for c in ALL_CRITERIA if failed[c]},
        "consented": sum(1 for s in rows if s["consented"]),
        "enrolled": len(enrolled),
        "treated": sum(1 for s in enrolled if s["treated"]),
        "completed": sum(1 for s in enrolled if s["course_completed"]),
        "withdrawn": sum(1 for s in enrolled if s["withdrawn"]),
        "died": sum(1 for s in enrolled if not s["alive"]),
    }


SECTION = Section('eligibility', KEYS, row, summary, COLUMNS, HEADERS)
