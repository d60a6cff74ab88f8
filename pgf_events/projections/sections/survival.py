"""The survival section: OS, DFS and relapse observations (derived by :mod:`..follow_up`), the report
row and the cohort summary (Kaplan–Meier and Aalen–Johansen at the protocol horizon)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row, aj, km
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "evaluation_date", "transplant_date", "enrolled", "treated", "alive", "death_date", "relapsed",
    "relapse_date", "survival",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "origin_date", "os_days", "os_event", "dfs_days", "dfs_event", "dfs_censor",
)
HEADERS = {"origin_date": "origin"}


def row(s: Row) -> dict[str, Any]:
    v = s["survival"]
    os_, dfs, tx = v["os"], v["dfs"], v["from_transplant"]
    return {"subject": s["subject"], "enrolled": s["enrolled"], "origin_date": v["origin_date"],
            "os_days": os_["time"] if os_ else None, "os_event": os_["status"] if os_ else None,
            "dfs_days": dfs["time"] if dfs else None, "dfs_event": dfs["status"] if dfs else None,
            "dfs_censor": v["dfs_censor"], "relapse_date": s["relapse_date"], "death_date": s["death_date"],
            "last_alive_date": v.get("last_alive_date"), "entry_days": os_.get("entry") if os_ else None,
            "last_disease_assessment_date": v.get("last_disease_assessment_date"),
            "os_days_from_transplant": tx["os"]["time"], "dfs_days_from_transplant": tx["dfs"]["time"],
            "refs": sorted({r for o in (os_, dfs) if o for r in o["refs"]})}

def survival_observations(rows: Sequence[Row], key: str, origin: str | None = None) -> list[dict[str, Any]]:
    """The OS/DFS/relapse observations of enrolled patients from the protocol origin (or ``origin``)."""
    out = []
    for s in rows:
        if not s["enrolled"]:
            continue
        block = s["survival"] if origin is None else s["survival"][f"from_{origin}"]
        if block[key] is not None:
            out.append({**block[key], "subject": s["subject"]})
    return out

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    h = params.survival_horizon_days

    def block(origin: str | None) -> dict[str, Any]:
        delayed = params.transplant_delayed_entry and (origin or params.survival_origin) == "transplant"
        label = ("from transplant (day 0), conditional on reaching MSC treatment (delayed entry at MSC D1)"
                 if delayed else "from transplant (day 0)" if (origin or params.survival_origin) == "transplant"
                 else "from the first MSC infusion (MSC D1)")
        return {"label": label, "os_1y": km(survival_observations(rows, "os", origin), h),
                "dfs_1y": km(survival_observations(rows, "dfs", origin), h),
                "relapse_1y": aj(survival_observations(rows, "relapse", origin), h)}

    return {"origin": params.survival_origin, "horizon_days": h,
            "enrolled": sum(1 for s in rows if s["enrolled"]), **block(None),
            "relapse_censor": params.relapse_censor, "from_transplant": block("transplant")}


SECTION = Section('survival', KEYS, row, summary, COLUMNS, HEADERS)
