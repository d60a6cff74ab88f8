"""What one new record changed in a patient's derived state: the lines ``pgf record`` prints after
the reference (eligible now, dose 2 on time, neutrophil engraftment reached...).

The derived states before and after are the same pure functions as ``pgf status`` (the patient's
own stream, no read models), so the echo never disagrees with the status.
"""

from __future__ import annotations

from typing import Any

from pgf_events.application import TrialConduct
from pgf_events.domain.patient import Patient
from pgf_events.projections.derive import derive_echo, fold

ENDPOINTS = (("neutrophil_engraftment", "neutrophil engraftment"), ("rbc_recovery", "red-cell recovery"))


def stored_and_changes(app: TrialConduct, subject: str, version: int) -> tuple[Any, list[str]]:
    """The record stored at ``version`` (as first entered) and the status changes it caused.

    A long-running process (``pgf shell``, ``pgf daemon``) gives the app a ``status_memo``: the status
    after each record it echoed, by (subject, version). A stream's first N events never change, so the
    status at N is the status before N+1, and the next record derives the patient once, not twice.
    """
    memo: dict[tuple[str, int], Any] | None = getattr(app, "status_memo", None)
    kept = app.kept_patient(subject, version) if memo is not None else None
    before_doc = memo.get((kept[0].subject, version - 1)) if kept is not None and memo is not None else None
    after: Patient | None
    if kept is not None and (before_doc is not None or version == 1):
        # The patient the record was just saved to, kept by the long-running process at that very version
        # (the same state as its stream folded): derived without reading or folding the stream again.
        after, recorded = kept
        app.check_site(kept[0].subject, kept[0].registration.site)
    else:
        events = [e for e in app.stream(subject) if e.originator_version <= version]
        after, recorded = fold(events)
        assert after is not None
        before_doc = memo.get((after.subject, version - 1)) if memo is not None else None
        if before_doc is None and version > 1:
            before, before_recorded = fold(events[:-1])
            before_doc = _status(before, before_recorded, app) if before is not None else None
    assert after is not None
    record = after.entries[version].original if version in after.entries else None
    after_doc = _status(after, recorded, app)
    if memo is not None:  # a long-running process: this record's "after" is the next one's "before"
        if len(memo) >= 10_000:
            memo.clear()
        memo[(after.subject, version)] = after_doc
    return record, changes(before_doc, after_doc)


def _status(patient: Patient, recorded: dict[int, Any], app: TrialConduct) -> dict[str, Any]:
    """What :func:`changes` compares of the patient's status (``derive_echo``: the same values as
    ``pgf status`` on these keys; a property test holds them to it)."""
    return derive_echo(patient, app.protocol)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Human lines for what differs between two status documents of one patient."""
    b: dict[str, Any] = before or {}
    out = []
    old, new = (b.get("eligibility") or {}).get("status"), after["eligibility"]["status"]
    if new != old and old is not None:
        out.append(f"{new} now" + (f" (was {old})" if old else ""))
    if after.get("enrolled") and not b.get("enrolled"):
        out.append(f"enrolled {after['enrolment_date']}")
    old_doses = {d["number"]: d for d in (b.get("dosing") or {}).get("doses", [])}
    for dose in after["dosing"].get("doses", []):
        was = old_doses.get(dose["number"], {})
        if dose["status"] != was.get("status") and dose["status"] != "pending":
            when = f" on {dose['date']}" if dose.get("date") else ""
            out.append(f"dose {dose['number']} {dose['status'].replace('_', ' ')}{when} (MSC D{dose['msc_day']})")
    if after["dosing"].get("completed") and not (b.get("dosing") or {}).get("completed"):
        out.append("MSC course completed")
    ep, old_ep = after["endpoints"], b.get("endpoints") or {}
    for key, label in ENDPOINTS:
        found = ep.get(key)
        if found and not old_ep.get(key):
            out.append(f"{label} reached {found['date']} (MSC D{found['msc_day']}, day +{found['day_post_transplant']})")
    if ep.get("platelet_response") and ep.get("platelet_response") != old_ep.get("platelet_response"):
        out.append(f"platelet response {ep['platelet_response']}"
                   + (f" on {ep['platelet_response_date']}" if ep.get("platelet_response_date") else ""))
    if after.get("death_date") and not b.get("death_date"):
        out.append(f"died {after['death_date']}")
    if after.get("relapsed") and not b.get("relapsed"):
        out.append(f"relapsed {after['relapse_date']}")
    if after.get("withdrawn") and not b.get("withdrawn"):
        out.append(f"withdrawn {after['withdrawal_date']}")
    return out
