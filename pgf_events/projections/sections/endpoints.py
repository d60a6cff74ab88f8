"""The hemogram endpoints section: neutrophil engraftment, red-cell recovery and platelet response
(derived per lineage), their report row and cohort summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pgf_events.domain.rules import hemogram
from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint
from pgf_events.domain.rules.response import lineage_outcomes
from pgf_events.formatting import iso
from pgf_events.projections.clinical import DAY_LABELS, msc_day
from pgf_events.projections.sections.base import Section
from pgf_events.projections.stats import Row, median, rate
from pgf_events.protocol import Protocol

# The patient-state keys this report's projection rows keep (besides the common header).
KEYS = (
    "evaluation_date", "transplant_date", "enrolled", "treated", "endpoints",
)
# Human table columns (JSON and CSV carry every column of the row).
COLUMNS = (
    "subject", "neutrophil_engraftment_date", "anc_msc_day", "rbc_recovery_date",
    "rbc_msc_day", "platelet_response", "platelet_response_date", "plt_msc_day", "reasons",
)
HEADERS = {
    "anchor_date": "anchor", "neutrophil_engraftment_date": "ANC date", "anc_msc_day": "ANC MSC D",
    "rbc_recovery_date": "RBC date", "rbc_msc_day": "RBC MSC D", "platelet_response": "PLT",
    "platelet_response_date": "PLT date", "plt_msc_day": "PLT MSC D",
}


def _dated(found: Any, msc_d1: date | None) -> dict[str, Any]:
    return {"date": iso(found.day), "day_post_transplant": found.day_post_transplant,
            "msc_day": msc_day(msc_d1, found.day),
            "days_since_msc_d1": found.days_since_msc_d1, "days_from_anchor": found.days_from_anchor}


def derive(labs: list[LabPoint], transfusions: list[TransfusionPoint], params: Protocol, *,
              transplant: date, msc_d1: date | None, as_of: date,
              exit_at: tuple[date, str, str] | None) -> dict[str, Any]:
    out = lineage_outcomes(labs, transfusions, params, transplant_day=transplant, msc_d1=msc_d1, as_of=as_of,
                           exit_event=exit_at[:2] if exit_at else None)
    anc, rbc, plt = out.anc, out.rbc, out.plt
    anchor = hemogram.endpoint_anchor(params, transplant_day=transplant, msc_d1=msc_d1)
    not_evaluable = sorted(out.baseline_refs)
    return {
        "anchor": params.endpoint_anchor, "anchor_date": iso(anchor), "msc_d1": iso(msc_d1),
        "neutrophil_engraftment_date": iso(anc.day) if anc else None,
        "rbc_recovery_date": iso(rbc.day) if rbc else None,
        "platelet_response": out.platelet_response,
        "platelet_response_date": iso(plt.day) if plt and plt.response != "NR" else None,
        "reasons": dict(sorted(out.reasons.items())),
        "not_evaluable": not_evaluable,
        "baseline_refs": {k: list(v) for k, v in sorted(out.baseline_refs.items())},
        "neutrophil_engraftment": {**_dated(anc, msc_d1), "values": list(anc.values), "refs": list(anc.refs)}
        if anc else None,
        "rbc_recovery": {**_dated(rbc, msc_d1), "hb": rbc.hb, "refs": list(rbc.refs)} if rbc else None,
        "platelet": {**_dated(plt, msc_d1), "response": plt.response, "window_end": iso(plt.window_end),
                     "values": list(plt.values), "refs": list(plt.refs)} if plt else None,
        "day_labels": DAY_LABELS,
    }


def _days(found: Mapping[str, Any] | None, key: str) -> int | None:
    return found[key] if found else None

def row(s: Row) -> dict[str, Any]:
    e = s["endpoints"]
    anc, rbc, plt = e["neutrophil_engraftment"], e["rbc_recovery"], e["platelet"]
    return {
        "subject": s["subject"], "enrolled": s["enrolled"], "anchor_date": e["anchor_date"],
        "neutrophil_engraftment_date": e["neutrophil_engraftment_date"],
        "anc_day_post_transplant": _days(anc, "day_post_transplant"),
        "anc_days_since_msc_d1": _days(anc, "days_since_msc_d1"), "anc_msc_day": _days(anc, "msc_day"),
        "rbc_recovery_date": e["rbc_recovery_date"],
        "rbc_day_post_transplant": _days(rbc, "day_post_transplant"),
        "rbc_days_since_msc_d1": _days(rbc, "days_since_msc_d1"), "rbc_msc_day": _days(rbc, "msc_day"),
        "platelet_response": e["platelet_response"], "platelet_response_date": e["platelet_response_date"],
        "plt_day_post_transplant": _days(plt, "day_post_transplant") if e["platelet_response_date"] else None,
        "plt_days_since_msc_d1": _days(plt, "days_since_msc_d1") if e["platelet_response_date"] else None,
        "plt_msc_day": _days(plt, "msc_day") if e["platelet_response_date"] else None,
        "reasons": e.get("reasons", {}),
        "refs": sorted({r for x in (anc, rbc, plt) if x for r in x["refs"]}),
    }

def _time_stats(found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"median_days_since_msc_d1": median([f["days_since_msc_d1"] for f in found]),
            "median_msc_day": median([f.get("msc_day") for f in found]),
            "median_day_post_transplant": median([f["day_post_transplant"] for f in found])}

def _reason_counts(evaluable: Sequence[Mapping[str, Any]], name: str) -> dict[str, int]:
    return dict(sorted(Counter(e["reasons"][name] for e in evaluable if name in e.get("reasons", {})).items()))

def summary(rows: Sequence[Row], params: Protocol) -> dict[str, Any]:
    """Rates over the patients with an anchor date; v2: a lineage met at baseline leaves that
    lineage's denominator (``not_evaluable``), and every null/NR/NE endpoint is counted by reason."""
    evaluable = [s["endpoints"] for s in rows if s["enrolled"] and s["endpoints"]["anchor_date"]]

    def lineage(name: str) -> list[Mapping[str, Any]]:
        return [e for e in evaluable if e.get("reasons", {}).get(name) != "met_at_baseline"]

    anc_n, rbc_n, plt_n = (lineage(k) for k in ("neutrophil_engraftment", "rbc_recovery", "platelet_response"))
    anc = [e["neutrophil_engraftment"] for e in anc_n if e["neutrophil_engraftment"]]
    rbc = [e["rbc_recovery"] for e in rbc_n if e["rbc_recovery"]]
    best = Counter(e["platelet_response"] for e in plt_n)
    responders = [e["platelet"] for e in plt_n if e["platelet_response"] in ("CR", "PR")]
    n = len(plt_n)
    return {
        "anchor": params.endpoint_anchor,
        "enrolled": sum(1 for s in rows if s["enrolled"]), "evaluable": len(evaluable),
        "neutrophil_engraftment": {**rate(len(anc), len(anc_n)), **_time_stats(anc),
                                   "not_evaluable": len(evaluable) - len(anc_n),
                                   "reasons": _reason_counts(evaluable, "neutrophil_engraftment")},
        "rbc_recovery": {**rate(len(rbc), len(rbc_n)), **_time_stats(rbc),
                         "not_evaluable": len(evaluable) - len(rbc_n),
                         "reasons": _reason_counts(evaluable, "rbc_recovery")},
        "platelet_response": {
            "CR": rate(best["CR"], n), "PR": rate(best["PR"], n),
            "CR_or_PR": {**rate(best["CR"] + best["PR"], n), **_time_stats(responders)},
            "NR": best["NR"], "pending": best[None], "not_evaluable": len(evaluable) - n,
            "reasons": _reason_counts(evaluable, "platelet_response"),
        },
        "day_labels": {"msc_day": "MSC day (D1 = first infusion, no D0)",
                       "day_post_transplant": "day post-transplant (transplant = day 0)",
                       "days_since_msc_d1": "days since MSC D1 (D1 = 0)"},
    }


SECTION = Section('endpoints', KEYS, row, summary, COLUMNS, HEADERS)
