"""``pgf patients``: one line per patient joined from the read models (eligibility, dosing,
endpoints, survival), with a one-word lifecycle status and the next dose window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

# The lifecycle, in order; --status takes these.
STATUSES = ("screening", "ineligible", "eligible", "enrolled", "on-treatment", "follow-up", "withdrawn", "died")
SOURCES = ("eligibility", "dosing", "endpoints", "survival")


def lifecycle(e: Mapping[str, Any], d: Mapping[str, Any] | None) -> str:
    if e.get("died"):
        return "died"
    if e.get("withdrawn"):
        return "withdrawn"
    if not e.get("enrolled"):
        return {"pending": "screening"}.get(e["status"], e["status"])
    if not e.get("treated"):
        return "enrolled"
    if d and d.get("next_dose") is not None and not d.get("discontinuation_reason"):
        return "on-treatment"
    return "follow-up"


def patient_list(rows: Mapping[str, Sequence[Mapping[str, Any]]], window_days: int, *,
                 sites: Sequence[str] = (), statuses: Sequence[str] = ()) -> list[dict[str, Any]]:
    """rows: each source projection's rows. Filters: sites (case-insensitive), lifecycle statuses."""
    by = {name: {r["subject"]: r for r in rows[name]} for name in SOURCES}
    wanted_sites = {s.upper() for s in sites}
    out = []
    for subject, e in sorted(by["eligibility"].items()):
        d, ep, sv = by["dosing"].get(subject), by["endpoints"].get(subject), by["survival"].get(subject)
        status = lifecycle(e, d)
        if (wanted_sites and str(e.get("site", "")).upper() not in wanted_sites) or (statuses and status not in statuses):
            continue
        line: dict[str, Any] = {"subject": subject, "site": e.get("site"), "status": status,
                                "msc_d1": d.get("msc_d1") if d else None,
                                "doses": f"{d['given']}/{d['planned']}" if d and e.get("enrolled") else None,
                                "next_dose": None, "window": None}
        due = d.get("next_dose_due") if d and status == "on-treatment" else None
        if due:
            target = date.fromisoformat(due)
            line["next_dose"] = d["next_dose"]  # type: ignore[index]
            line["window"] = f"{target - timedelta(days=window_days)}/{target + timedelta(days=window_days)}"  # ISO 8601
        line.update(_endpoints(ep, sv))
        out.append(line)
    return out


def _endpoints(ep: Mapping[str, Any] | None, sv: Mapping[str, Any] | None) -> dict[str, Any]:
    ep = ep or {}
    return {"anc_engraftment": ep.get("neutrophil_engraftment_date"), "rbc_recovery": ep.get("rbc_recovery_date"),
            "platelet_response": ep.get("platelet_response"),
            "death_date": (sv or {}).get("death_date"), "relapse_date": (sv or {}).get("relapse_date")}
