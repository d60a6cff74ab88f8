"""A patient's follow-up timeline and the time-to-event observations the cohort estimators use.

Conventions (docs/rules.md, "Survival"):
- origin: MSC D1 or the transplant date (``survival_origin``); both are reported. From the
  transplant, with ``transplant_delayed_entry`` (v2), every observation carries ``entry``, the days
  from transplant to MSC D1: patients enter the risk set at D1 (left truncation), and the estimate
  is conditional on reaching MSC treatment;
- last date known alive: the patient's latest *clinical* date (never an AE awareness time or a
  recorded time; with a cohort cut-off, the latest clinical date on or before it) unless dead;
- relapse: the earliest relapse record, or the earliest contact reporting ``--disease relapsed``;
- last disease assessment: the latest contact with a ``--disease`` status (or relapse record);
  when none was ever recorded DFS is censored at the last date known alive and the observation
  says so (``dfs_censor = "last_known_alive"``);
- OS: death from any cause, censored at the last date known alive; DFS: relapse or death,
  whichever first, censored at the last disease assessment;
- competing-risk observations (GVHD, infection, relapse): status 1 = the event, 2 = death first,
  0 = censored at the end of follow-up; relapse (v2, ``relapse_censor``) is censored at the last
  disease assessment, like DFS. An event dated before the origin counts at time 0.
Each observation is ``{"time": days, "status": 0|1|2, "refs": [...]}`` or null without an origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import attrs

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.protocol import Protocol


@attrs.frozen
class Timeline:
    origin: str
    origin_date: date | None
    transplant_date: date
    msc_d1: date | None
    end_date: date  # death date, or the last date known alive
    end_refs: tuple[str, ...]
    death_date: date | None
    relapse_date: date | None
    relapse_refs: tuple[str, ...]
    disease_date: date  # last disease assessment (or the last date known alive, see dfs_censor)
    disease_refs: tuple[str, ...]
    dfs_censor: str
    relapse_censor: str = "last_disease_assessment"
    delayed_entry: bool = True

    def start(self, origin: str) -> date | None:
        return self.transplant_date if origin == "transplant" else self.msc_d1


def timeline(patient: Patient, params: Protocol, *, msc_d1: date | None, as_of: date,
             latest: list[int]) -> Timeline:
    """``as_of`` is the last date known alive (the latest clinical date) and ``latest`` the versions
    of the records dated on it."""
    ref = patient.ref
    death = patient.death
    if death is not None:
        end, end_refs = death[1].date, (ref(death[0]),)
    else:
        end, end_refs = as_of, (ref(max(latest)),)
    relapses = [(r.date, ref(v)) for v, r in patient.active(vo.Relapse)]
    contacts = patient.active(vo.Contact)
    relapses += [(r.date, ref(v)) for v, r in contacts if r.disease == "relapsed"]
    relapse = min(relapses) if relapses else None
    assessed = [(r.date, ref(v)) for v, r in contacts if r.disease is not None] + relapses
    if assessed:
        disease, censor = max(assessed), "last_disease_assessment"
    else:
        disease, censor = (end, end_refs[0]), "last_known_alive"
    transplant = patient.registration.transplant_date
    return Timeline(
        origin=params.survival_origin,
        origin_date=transplant if params.survival_origin == "transplant" else msc_d1,
        transplant_date=transplant, msc_d1=msc_d1, end_date=end, end_refs=end_refs,
        death_date=death[1].date if death else None,
        relapse_date=relapse[0] if relapse else None, relapse_refs=(relapse[1],) if relapse else (),
        disease_date=disease[0], disease_refs=(disease[1],), dfs_censor=censor,
        relapse_censor=params.relapse_censor, delayed_entry=params.transplant_delayed_entry,
    )


def _obs(start: date, day: date, status: int, refs: Sequence[str]) -> dict[str, Any]:
    return {"time": max(0, (day - start).days), "status": status, "refs": list(refs)}


def competing(t: Timeline, event_day: date | None, refs: Sequence[str], origin: str | None = None, *,
              censor: tuple[date, Sequence[str]] | None = None) -> dict[str, Any] | None:
    """Time to an event with death competing, from the protocol origin (or ``origin``); censored at
    ``censor`` (date, refs) when given, else at the end of follow-up."""
    start = t.origin_date if origin is None else t.start(origin)
    if start is None:
        return None
    if event_day is not None and (t.death_date is None or event_day <= t.death_date):
        return _obs(start, event_day, 1, refs)
    if t.death_date is not None:
        return _obs(start, t.death_date, 2, t.end_refs)
    day, censor_refs = censor if censor is not None else (t.end_date, t.end_refs)
    return _obs(start, day, 0, censor_refs)


def _os(t: Timeline, start: date | None) -> dict[str, Any] | None:
    if start is None:
        return None
    return _obs(start, t.end_date, 1 if t.death_date else 0, t.end_refs)


def _dfs(t: Timeline, start: date | None) -> dict[str, Any] | None:
    if start is None:
        return None
    events = [(d, r) for d, r in ((t.relapse_date, t.relapse_refs), (t.death_date, t.end_refs)) if d is not None]
    if events:
        day, refs = min(events)
        return _obs(start, day, 1, refs)
    return _obs(start, t.disease_date, 0, t.disease_refs)


def _relapse(t: Timeline, origin: str) -> dict[str, Any] | None:
    censor = (t.disease_date, t.disease_refs) if t.relapse_censor == "last_disease_assessment" else None
    return competing(t, t.relapse_date, t.relapse_refs, origin, censor=censor)


def _entered(obs: dict[str, Any] | None, entry: int | None) -> dict[str, Any] | None:
    """Delayed entry: the observation enters the risk set at ``entry`` days (never after its time)."""
    if obs is None or entry is None:
        return obs
    return {**obs, "entry": min(entry, obs["time"])}


def survival(t: Timeline, params: Protocol) -> dict[str, Any]:
    def block(origin: str) -> dict[str, Any]:
        start = t.start(origin)
        entry = None
        if origin == "transplant" and t.delayed_entry and t.msc_d1 is not None:
            entry = max(0, (t.msc_d1 - t.transplant_date).days)
        out: dict[str, Any] = {
            "origin_date": start.isoformat() if start else None,
            "os": _entered(_os(t, start), entry), "dfs": _entered(_dfs(t, start), entry),
            "relapse": _entered(_relapse(t, origin), entry),
        }
        if origin == "transplant":
            out["delayed_entry"] = entry is not None
            out["label"] = ("from transplant (day 0), conditional on reaching MSC treatment: entry at MSC D1"
                            if entry is not None else "from transplant (day 0)")
        else:
            out["label"] = "from the first MSC infusion (MSC D1)"
        return out

    return {
        "origin": t.origin,
        **block(t.origin),
        "last_alive_date": None if t.death_date else t.end_date.isoformat(),
        "last_disease_assessment_date": t.disease_date.isoformat(),
        "dfs_censor": t.dfs_censor,
        "relapse_censor": t.relapse_censor,
        "from_transplant": block("transplant"),
        "from_first_infusion": block("first_infusion"),
    }


def infection_followup(episodes: Sequence[dict[str, Any]], t: Timeline) -> dict[str, Any]:
    """Patient-days at risk from the origin to death or last contact, the episodes in it, time to first."""
    start = t.origin_date
    if start is None:
        return {"origin_date": None, "end_date": t.end_date.isoformat(), "days_at_risk": 0, "episodes": 0,
                "first_onset": None, "incidence": None}
    inside = [e for e in episodes if start.isoformat() <= e["onset"] <= t.end_date.isoformat()]
    first = inside[0] if inside else None
    return {
        "origin_date": start.isoformat(), "end_date": t.end_date.isoformat(),
        "days_at_risk": max(0, (t.end_date - start).days), "episodes": len(inside),
        "first_onset": first["onset"] if first else None,
        "incidence": competing(t, date.fromisoformat(first["onset"]) if first else None,
                               [first["ref"]] if first else ()),
    }
