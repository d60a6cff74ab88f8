"""A small store holding one example of every finding the issue lists (issue 16)."""

from __future__ import annotations

from typing import Any

from pgf_events.application import TrialConduct
from tests.audit.test_exports import scenario
from tests.helpers import USER, enrolled, infuse


def rich_scenario(app: TrialConduct) -> dict[str, Any]:
    """The audit scenario (S001 treated and dead, S002 a screen failure) plus S003: enrolled, four doses,
    an infection with an organism, acute and chronic GVHD, a g/dL haemoglobin, a relapse, contacts;
    S004 enrolled and never infused."""
    marks = scenario(app)
    enrolled(app, "S003")
    app.record("lab", "S003", {"date": "2025-02-24", "anc": 0.3, "plt": 15, "hb": "7.2", "hb_unit": "g/dL"}, user=USER)
    for day in ("2025-02-25", "2025-03-04", "2025-03-11", "2025-03-18"):
        infuse(app, "S003", day)
    app.record("infection", "S003", {"onset": "2025-03-06", "site": "lung", "grade": 3, "organism": "Aspergillus"},
               user=USER)
    app.record("infection", "S003", {"onset": "2025-03-08", "site": "blood", "grade": 2}, user=USER)
    app.record("gvhd", "S003", {"date": "2025-03-20", "skin_bsa": 30, "bilirubin": 25, "bilirubin_unit": "µmol/L", "upper_gi": "no",
                                "stool_ml": 600}, user=USER)
    app.record("gvhd", "S003", {"date": "2025-09-01", "chronic": True, "organ": {"skin": 1, "mouth": 2}}, user=USER)
    app.record("ae", "S003", {"onset": "2025-04-02", "term": "rash", "grade": 1, "outcome": "recovering"}, user=USER)
    app.record("relapse", "S003", {"date": "2025-10-02"}, user=USER)
    app.record("contact", "S003", {"date": "2026-01-10", "status": "alive", "disease": "relapsed"}, user=USER)
    enrolled(app, "S004")
    return marks
