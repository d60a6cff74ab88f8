"""Electronic signatures: a ``Signed`` event binding signer, meaning, UTC time and the stream's hash.

``pgf sign S001 --meaning review`` records ``Patient.Signed`` with the chain hash of S001's
stored events 1..N as they stand (N = the version just before the signature). The signature stays
valid while nothing else is added to the patient: the first later event that is not itself a
signature (a record, a correction, a void) invalidates it. Signatures do not invalidate each
other, so an investigator's review followed by an approval leaves both valid.

Identity: the signer is the acting ``--user`` (or ``PGF_USER``, or the OS login), and on
PostgreSQL the database login that wrote the event; the CLI does not re-authenticate the signer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from pgf_events.audit.chain import stream_hash
from pgf_events.domain import values as vo
from pgf_events.domain.errors import ConcurrencyError, ValidationError
from pgf_events.domain.patient import SIGN, SIGNATURE_MEANINGS, Context, Patient, make_ref

MAX_ATTEMPTS = 8


def signatures(patient_events: Iterable[Any]) -> list[dict[str, Any]]:
    """Every signature in a patient's events (oldest first), valid or invalidated. Pure.

    Each: ``ref``, ``signer``, ``meaning``, ``signed_at`` (UTC), ``stream_version`` (the last event
    it covers), ``stream_hash``, ``valid`` and ``invalidated_by`` (the ref of the first later
    event that is not a signature, or None).
    """
    out: list[dict[str, Any]] = []
    subject = ""
    for event in patient_events:
        if isinstance(event, Patient.Registered):
            subject = event.subject
        version = event.originator_version
        if isinstance(event, Patient.Signed):
            out.append({
                "ref": make_ref(subject, version), "signer": event.recorded_by, "meaning": event.meaning,
                "signed_at": event.signed_at, "stream_version": event.stream_version,
                "stream_hash": event.stream_hash, "valid": True, "invalidated_by": None,
            })
            continue
        for signature in out:
            if signature["valid"]:
                signature["valid"] = False
                signature["invalidated_by"] = make_ref(subject, version)
    return out


def stream_digest(app: Any, originator_id: UUID, version: int) -> str:
    """The chain hash (hex) over one patient's stored events 1..version, exactly as stored."""
    stored = app.recorder.select_events(originator_id, lte=version)
    return stream_hash([
        (s.originator_id if isinstance(s.originator_id, UUID) else UUID(str(s.originator_id)),
         s.originator_version, s.topic, s.state)
        for s in stored
    ]).hex()


def check_hashes(app: Any, subject: str) -> list[dict[str, Any]]:
    """:func:`signatures` plus ``hash_ok``: does the stored stream still hash to what was signed?"""
    patient = app.patient(subject)
    rows = signatures(app.stream(subject))
    for row in rows:
        row["hash_ok"] = stream_digest(app, patient.id, row["stream_version"]) == row["stream_hash"]
    return rows


def sign(app: Any, subject: str, meaning: str, *, user: str, source: str | None = None) -> dict[str, Any]:
    """Record a signature over the patient's stream as it stands; re-read and retry if someone writes first."""
    try:
        user = vo.p.parse_text(user, "user", 64)
    except ValidationError:
        raise ValidationError("--user (or PGF_USER) must name who is signing") from None
    if meaning not in SIGNATURE_MEANINGS:
        raise ValidationError(f"--meaning must be one of {', '.join(SIGNATURE_MEANINGS)}, not {meaning!r}")
    if source is not None:
        source = vo.p.parse_text(source, "source", 200)
    from pgf_events.monitoring import check_not_locked  # noqa: PLC0415 - monitoring imports the app layer

    for attempt in range(MAX_ATTEMPTS):
        check_not_locked(app)
        patient = app.patient(subject)
        digest = stream_digest(app, patient.id, patient.version)
        now: datetime = app.clock()
        patient.sign(meaning, digest, Context(recorded_by=user, now=now, protocol=app.protocol, source=source))
        try:
            app.save(patient)
        except IntegrityError:
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
            continue
        return {
            "ref": patient.ref(patient.version), "subject": patient.subject, "kind": SIGN, "signer": user,
            "meaning": meaning, "signed_at": now, "stream_version": patient.version - 1, "stream_hash": digest,
        }
    raise ConcurrencyError(
        f"could not sign after {MAX_ATTEMPTS} attempts because others kept writing to {subject}; nothing was written"
    )
