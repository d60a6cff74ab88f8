"""The infections section: episodes (incident after MSC D1, or prevalent at baseline), the report row
and the cohort summary (rates per patient-days, cumulative incidence)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.formatting import iso
from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row, aj, rate
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "evaluation_date", "enrolled", "treated", "alive", "death_date", "infections", "infection_episodes",
    "baseline_infections", "infection_followup",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "infections", "first_onset", "episodes_at_risk", "days_at_risk", "max_grade", "sites",
)
HEADERS: dict[str, str] = {}


def derive(patient: Patient, msc_d1: date | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The infection episodes after MSC D1 and those prevalent at baseline (v2: onset before D1)."""
    episodes: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for v, r in sorted(patient.active(vo.Infection), key=lambda vr: (vr[1].onset, vr[0])):
        episode = {"onset": iso(r.onset), "site": r.site, "grade": r.grade, "organism": r.organism,
                   "ref": patient.ref(v)}
        (baseline if msc_d1 is not None and r.onset < msc_d1 else episodes).append(episode)
    return episodes, baseline


def row(s: Row) -> dict[str, Any]:
    f = s["infection_followup"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "infections": s["infections"],
            "first_onset": f["first_onset"], "episodes_at_risk": f["episodes"], "days_at_risk": f["days_at_risk"],
            "max_grade": max((e["grade"] for e in s["infection_episodes"]), default=None),
            "sites": sorted({e["site"] for e in s["infection_episodes"]}),
            "baseline_infections": len(s.get("baseline_infections") or []),
            "refs": [e["ref"] for e in s["infection_episodes"]]}

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    enrolled = [s for s in rows if s["enrolled"]]
    at_risk = [s["infection_followup"] for s in enrolled if s["infection_followup"]["origin_date"]]
    days = sum(f["days_at_risk"] for f in at_risk)
    episodes = sum(f["episodes"] for f in at_risk)
    all_episodes = [e for s in enrolled for e in s["infection_episodes"]]
    return {
        "patients_with_infection": rate(sum(1 for s in enrolled if s["infections"]), len(enrolled)),
        "episodes": len(all_episodes),
        "baseline_prevalent": {"patients": sum(1 for s in enrolled if s.get("baseline_infections")),
                               "episodes": sum(len(s.get("baseline_infections") or []) for s in enrolled)},
        "episodes_at_risk": episodes, "patient_days_at_risk": days,
        "per_100_patient_days": episodes / days * 100 if days else None,
        "cumulative_incidence": aj([f["incidence"] for f in at_risk if f["incidence"]], params.survival_horizon_days),
        "by_grade": {str(g): sum(1 for e in all_episodes if e["grade"] == g) for g in range(1, 6)},
        "by_site": dict(sorted(Counter(e["site"] for e in all_episodes).items())),
    }


SECTION = Section('infections', KEYS, row, summary, COLUMNS, HEADERS)
