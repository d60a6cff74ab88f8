"""Shared by the projection tests: the interface's fixed keys and small history builders."""

from __future__ import annotations

from typing import Any

from pgf_events.application import TrialConduct
from pgf_events.projections.derive import PatientState, derive_patient, fold
from tests.helpers import USER, enrolled, infuse

# docs/interface.md, "Reading": pgf status --json (at least these keys).
STATUS_KEYS = {
    "subject": None,
    "eligibility": {"status", "unmet"},
    "enrolled": None,
    "dosing": {"planned", "given", "on_time", "early", "late", "missed", "cumulative_cells_per_kg", "completed"},
    "endpoints": {"neutrophil_engraftment_date", "rbc_recovery_date", "platelet_response", "platelet_response_date"},
    "gvhd": {"acute_max_grade", "chronic_max_severity"},
    "infections": None,
    "alive": None,
    "relapsed": None,
}
SURVIVAL_KEYS = {"estimate", "ci_low", "ci_high", "at_risk"}


def assert_status_keys(doc: dict[str, Any]) -> None:
    for key, inner in STATUS_KEYS.items():
        assert key in doc, key
        if inner:
            assert inner <= set(doc[key]), (key, inner - set(doc[key]))
    assert doc["eligibility"]["status"] in ("pending", "eligible", "ineligible")
    assert isinstance(doc["enrolled"], bool) and isinstance(doc["alive"], bool) and isinstance(doc["relapsed"], bool)
    assert isinstance(doc["infections"], int)
    assert doc["endpoints"]["platelet_response"] in ("CR", "PR", "NR", "NE", None)
    assert doc["gvhd"]["acute_max_grade"] in (None, 0, 1, 2, 3, 4)


def lab(app: TrialConduct, day: str, subject: str = "S001", **values: float) -> str:
    return app.record("lab", subject, {"date": day, **values}, user=USER).ref


def treated(app: TrialConduct, subject: str = "S001", d1: str = "2025-03-01") -> str:
    enrolled(app, subject)
    return infuse(app, subject, d1)


def state_of(app: TrialConduct, subject: str = "S001") -> PatientState:
    patient, recorded = fold(app.stream(subject))
    assert patient is not None
    return derive_patient(patient, app.protocol, recorded)
