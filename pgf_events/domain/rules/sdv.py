"""Source data verification status, derived (pure) from a patient's entries and its verifications.

A record is ``verified`` when a monitor verified it and no correction or void of it (or of its
corrections) was recorded after that verification; ``invalidated`` when one was; otherwise
``not yet``. The risk-based plan (:data:`DEFAULT_PLAN`, protocol ``sdv_plan``) says which records
must be verified: eligibility (screening), consent, enrolment, infusions, serious AEs, and the
primary-endpoint labs (labs from MSC D1 to the response evaluation day ``nr_evaluation_day``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.entries import CORRECTION, VOID
from pgf_events.domain.patient import Patient
from pgf_events.protocol import Protocol

DEFAULT_PLAN = ("screen", "consent", "enrol", "infuse", "sae", "endpoint_lab")


def _changed_after(patient: Patient, version: int, after: int) -> int | None:
    """The first correction or void of ``version`` (or of its corrections) recorded after ``after``."""
    pending = list(patient.entries[version].children)
    found = []
    while pending:
        child = patient.entries[pending.pop()]
        if child.kind in (CORRECTION, VOID):
            if child.version > after:
                found.append(child.version)
            pending.extend(child.children)
    return min(found) if found else None


def required(patient: Patient, params: Protocol, plan: tuple[str, ...] = DEFAULT_PLAN) -> set[int]:
    """The versions of the standing records the plan says must be verified."""
    out: set[int] = set()
    simple = {"screen": vo.Screening, "consent": vo.Consent, "enrol": vo.Enrolment, "infuse": vo.Infusion}
    for name, record_type in simple.items():
        if name in plan:
            out.update(v for v, _ in patient.active(record_type))
    if "sae" in plan:
        out.update(v for v, ae in patient.active(vo.AdverseEvent) if ae.serious)
    infusions = patient.active(vo.Infusion)
    if "endpoint_lab" in plan and infusions:
        d1 = min(r.date for _, r in infusions)
        end = d1 + timedelta(days=params.nr_evaluation_day)
        out.update(v for v, lab in patient.active(vo.LabPanel) if d1 <= lab.date <= end)
    return out


def sdv_status(patient: Patient, verified: Mapping[str, Any], params: Protocol,
               plan: tuple[str, ...] = DEFAULT_PLAN) -> list[dict[str, Any]]:
    """One row per standing record that is required or was verified: ref, kind, required, status, by."""
    needed = required(patient, params, plan)
    rows = []
    for version, record in patient.clinical_records():
        ref = patient.ref(version)
        check = verified.get(ref)
        if version not in needed and check is None:
            continue
        status, by, changed = "not yet", None, None
        if check is not None:
            changed = _changed_after(patient, version, check.stream_version)
            status = "invalidated" if changed else "verified"
            by = check.by
        rows.append({"ref": ref, "kind": record.KIND, "date": record.clinical_date, "required": version in needed,
                     "status": status, "verified_by": by,
                     "changed_by": patient.ref(changed) if changed else None})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    req = [r for r in rows if r["required"]]
    return {
        "required": len(req),
        "verified": sum(r["status"] == "verified" for r in req),
        "not_yet": sum(r["status"] == "not yet" for r in req),
        "invalidated": sum(r["status"] == "invalidated" for r in rows),
        "extra_verified": sum(r["status"] == "verified" and not r["required"] for r in rows),
    }
