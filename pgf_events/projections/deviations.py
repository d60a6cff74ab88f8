"""``pgf report deviations``: the protocol-deviation log, per patient and for the cohort.

Three sources, one row each:

* **acknowledged**: a deviation an event acknowledged with ``--deviation`` (the event stores the
  reason and the deviations it covers); the row says who acknowledged it, when and in which event.
  If later corrections made the record conform, the row stays, with status ``no_longer_applies``.
* **derived**: what the engine derives rather than anyone enters: a missed dose (its window closed
  with no infusion, as of the patient's evaluation date).
* **not_acknowledged**: a deviation in a stream recorded before deviations needed an
  acknowledgement (the entry rules now refuse it without one).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from pgf_events.audit.source import fold, patient_streams
from pgf_events.domain import integrity
from pgf_events.domain import values as vo
from pgf_events.domain.parsing import latest_valid_date
from pgf_events.domain.rules import entry
from pgf_events.domain.rules.inputs import InfusionPoint
from pgf_events.projections import sections
from pgf_events.projections.cohort import scope_note
from pgf_events.projections.derive import _trusted, evaluation_date

COLUMNS = ["subject", "site", "kind", "date", "ref", "status", "detail", "reason", "acknowledged_by",
           "acknowledged_in", "acknowledged_at"]


def deviation_rows(app: Any, as_of: datetime | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for subject, events in patient_streams(app, as_of):
        rows.extend(patient_deviations(subject, events, app.protocol, now=as_of or app.clock()))
    return rows


def patient_deviations(subject: str, events: list[Any], params: Any, now: datetime,
                       patient: Any = None) -> list[dict[str, Any]]:
    """One patient's rows (``patient``: the events folded, if already done)."""
    patient = fold(events) if patient is None else patient
    site = patient.registration.site
    items = integrity.items(patient)
    findings = {f.key: f for f in entry.check_stream(items, params, latest_valid_date(now)) if not f.impossible}
    dates = {i.ref: i.record.clinical_date for i in items}
    rows: list[dict[str, Any]] = []
    acknowledged: set[tuple[str, str]] = set()
    for event in events:
        for ack in getattr(event, "acknowledged", None) or ():
            key = (ack["kind"], ack["ref"])
            acknowledged.add(key)
            finding = findings.get(key)
            rows.append({
                "subject": subject, "site": site, "kind": ack["kind"],
                "date": finding.day if finding else dates.get(ack["ref"]), "ref": ack["ref"],
                "status": "acknowledged" if finding else "no_longer_applies",
                "detail": finding.message if finding else None, "reason": event.deviation,
                "acknowledged_by": event.recorded_by, "acknowledged_in": patient.ref(event.originator_version),
                "acknowledged_at": event.timestamp,
            })
    for key, finding in findings.items():
        if key not in acknowledged:
            rows.append(_row(subject, site, finding.kind, finding.day, finding.ref, "not_acknowledged",
                             finding.message))
    if patient.enrolment is not None:
        dosing = dosing_of(patient, params)
        for d in dosing["deviations"]:
            if d["kind"] == "missed":
                target = next((x["target"] for x in dosing["doses"] if x["number"] == d["dose"]), None)
                rows.append(_row(subject, site, "missed_dose", target, (d["refs"] or [None])[0], "derived",
                                 d["detail"]))
    return rows


def dosing_of(patient: Any, params: Any) -> dict[str, Any]:
    """``derive_patient(patient, params).dosing`` alone (tested equal), without the rest of the
    derivation: the deviation log is kept per stream in the audit read model, in every rebuild."""
    infusions = [_trusted(InfusionPoint, day=r.date, ref=patient.ref(v), cells=r.cells, weight_kg=r.weight_kg)
                 for v, r in patient.active(vo.Infusion)]
    return sections.dosing.derive(patient, infusions, params, evaluation_date(patient)[0])  # type: ignore[no-any-return]


def _row(subject: str, site: str, kind: str, day: Any, ref: str | None, status: str, detail: str) -> dict[str, Any]:
    return {"subject": subject, "site": site, "kind": kind, "date": day, "ref": ref, "status": status,
            "detail": detail, "reason": None, "acknowledged_by": None, "acknowledged_in": None,
            "acknowledged_at": None}


def deviation_report(app: Any, as_of: datetime | None = None, cutoff: date | None = None,
                     every: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The log as one document; ``cutoff`` (a clinical date) leaves out deviations dated after it.
    ``every``: :func:`deviation_rows` of ``as_of`` if already known (the web keeps them per patient)."""
    day = cutoff.isoformat() if cutoff is not None else None  # rows carry ISO dates: compare as text
    rows = [r for r in (deviation_rows(app, as_of) if every is None else every) if (day is None or r["date"] is None or str(r["date"]) <= day)
            and app.in_scope(r["site"])]  # a site-scoped user: their sites only
    by_patient = Counter(r["subject"] for r in rows)
    return {
        "report": "deviations", "as_of": as_of, "cutoff": cutoff, "protocol_version": app.protocol.version,
        "rows": rows,
        "summary": {
            "deviations": len(rows),
            "patients_with_deviations": len(by_patient),
            "by_kind": dict(sorted(Counter(r["kind"] for r in rows).items())),
            "by_status": dict(sorted(Counter(r["status"] for r in rows).items())),
            "by_site": dict(sorted(Counter(r["site"] for r in rows).items())),
            "by_patient": dict(sorted(by_patient.items())),
        },
        **scope_note(app.site_scope),
    }
