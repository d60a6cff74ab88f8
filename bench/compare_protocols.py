"""Evaluate one store under two protocol versions and list every patient whose category changed.

    python bench/compare_protocols.py --db sqlite:///pgf-trial.db            # v1 -> v2
    python bench/compare_protocols.py --db URL --old v1 --new FILE.toml --json

Categories per lineage: neutrophils and red cells ``recovered`` / ``not recovered`` / ``NE``
(met at baseline); platelets ``CR`` / ``PR`` / ``NR`` / ``NE`` / ``pending``. Each change is listed
with the new version's reason (e.g. ``NR -> CR`` for a sustained weekly run, ``pending -> NR
(died)``). It derives every patient from the event log with the same functions the read models
use, so it never touches the store's read models. Also prints response rates and 1-year OS/DFS
under both versions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from pgf_events.application import TrialConduct
from pgf_events.projections.cohort import build_report
from pgf_events.projections.derive import derive_patient
from pgf_events.projections.queries import _all_patients
from pgf_events.protocol import PRESETS, Protocol
from pgf_events.store import parse_url

LINEAGES = {"neutrophil_engraftment": "ANC", "rbc_recovery": "RBC", "platelet_response": "PLT"}


def _protocol(name: str) -> Protocol:
    return Protocol.preset(name) if name in PRESETS else Protocol.from_toml(name)


def category(endpoints: dict[str, Any], name: str) -> str:
    reasons = endpoints.get("reasons", {})
    if reasons.get(name) == "met_at_baseline":
        return "NE"
    if name == "platelet_response":
        return endpoints["platelet_response"] or "pending"
    return "recovered" if endpoints[f"{name}_date"] else "not recovered"


def compare(url: str, old: Protocol, new: Protocol) -> dict[str, Any]:
    app = TrialConduct(parse_url(url), new)
    try:
        states = {}
        for patient, recorded in _all_patients(app):
            if patient.enrolment is None:
                continue
            states[patient.subject] = tuple(derive_patient(patient, p, recorded).as_json() for p in (old, new))
    finally:
        app.close()
    changes, transitions = [], Counter()
    for subject, (before, after) in sorted(states.items()):
        for name, short in LINEAGES.items():
            a, b = category(before["endpoints"], name), category(after["endpoints"], name)
            if a != b:
                reason = after["endpoints"].get("reasons", {}).get(name)
                if reason is None and b in ("CR", "PR") and new.plt_rule != old.plt_rule:
                    reason = f"{new.plt_rule} rule"  # a run the other platelet rule did not see
                changes.append({"subject": subject, "lineage": short, "old": a, "new": b, "reason": reason})
                transitions[f"{short} {a} -> {b}" + (f" ({reason})" if reason else "")] += 1
    summary = {}
    for label, p, idx in (("old", old, 0), ("new", new, 1)):
        rows = [s[idx] for s in states.values()]
        ep = build_report("endpoints", rows, p)["summary"]
        sv = build_report("survival", rows, p)["summary"]
        summary[label] = {
            "protocol_version": p.version,
            "neutrophil_engraftment": _rate(ep["neutrophil_engraftment"]),
            "rbc_recovery": _rate(ep["rbc_recovery"]),
            "platelet_CR": _rate(ep["platelet_response"]["CR"]), "platelet_PR": _rate(ep["platelet_response"]["PR"]),
            "platelet_CR_or_PR": _rate(ep["platelet_response"]["CR_or_PR"]),
            "os_1y": sv["os_1y"]["estimate"], "dfs_1y": sv["dfs_1y"]["estimate"],
            "relapse_1y": sv["relapse_1y"]["estimate"],
            "os_1y_from_transplant": sv["from_transplant"]["os_1y"]["estimate"],
        }
    return {"patients": len(states), "patients_changed": len({c["subject"] for c in changes}),
            "transitions": dict(transitions.most_common()), "changes": changes, "summary": summary}


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _rate(r: dict[str, Any]) -> str:
    return f"{r['k']}/{r['n']} ({r['estimate']:.1%})" if r["n"] else "0/0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="store URL, e.g. sqlite:///pgf-trial.db")
    parser.add_argument("--old", default="v1", help="protocol version (v1, v2) or TOML file; default v1")
    parser.add_argument("--new", default="v2", help="protocol version (v1, v2) or TOML file; default v2")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    doc = compare(args.db, _protocol(args.old), _protocol(args.new))
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    old, new = doc["summary"]["old"], doc["summary"]["new"]
    print(f"{doc['patients']} enrolled patients; {doc['patients_changed']} changed category "
          f"from {old['protocol_version']} to {new['protocol_version']}")
    for key in ("neutrophil_engraftment", "rbc_recovery", "platelet_CR", "platelet_PR", "platelet_CR_or_PR",
                "os_1y", "dfs_1y", "relapse_1y", "os_1y_from_transplant"):
        print(f"  {key:<24} {_fmt(old[key]):>18} -> {_fmt(new[key])}")
    print("transitions:")
    for label, n in doc["transitions"].items():
        print(f"  {n:>4}  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
