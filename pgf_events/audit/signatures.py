"""Reading electronic signatures: which are still valid, and does each one verify offline.

``pgf sign`` (the use case is :meth:`TrialConduct.sign`, in :mod:`pgf_events.signing`) records
``Patient.Signed`` with the chain hash of the patient's stored events 1..N as they stand, and the
signer's Ed25519 signature over that head, the meaning and the time. A signature stays valid
while nothing else is added to the patient: the first later event that is not itself a signature
(a record, a correction, a void) invalidates it. Signatures do not invalidate each other.

:func:`check_hashes` checks each one offline: the stored events still hash to what was signed
(``hash_ok``), and the signature verifies with the public key registered (and approved) in the
user directory for its signer (``signature``: ``verified``, ``INVALID``, ``unregistered key``,
``key of another user``, ``key not approved``, or ``legacy`` for signatures stored before keys).
"""

from __future__ import annotations

from typing import Any

from pgf_events.audit.source import fold
from pgf_events.domain import esign
from pgf_events.domain.patient import Patient
from pgf_events.domain.users import UserDirectory
from pgf_events.log import notifications
from pgf_events.projections.signatures import signatures
from pgf_events.signing import signed_statement, stream_digest
from pgf_events.topics import topic_of

__all__ = ["check_hashes", "signature_status", "signatures", "signed_subjects"]  # signatures: re-exported
LEGACY = "legacy"
VERIFIED = "verified"


def signature_status(event: Any, subject: str, directory: UserDirectory | None) -> str:
    """Does one stored signature verify offline with its signer's registered public key?"""
    if event.key_id is None and event.signature is None:
        return LEGACY
    key = directory.keys.get(event.key_id or "") if directory is not None else None
    if key is None:
        return "unregistered key"
    if key.user != event.recorded_by:
        return "key of another user"
    if not key.approved_by:
        return "key not approved"
    return VERIFIED if esign.verifies(key.public_key, signed_statement(event, subject), event.signature) else "INVALID"


def signed_subjects(app: Any) -> list[str]:
    """The subjects (of those the acting user may see, in registration order) whose streams hold a
    signature. Only the signature events are selected (by topic), so the cost follows the signatures
    and the registrations, not the whole log; unsigned patients' streams are never read."""
    signed = {n.originator_id for n in notifications(app.recorder, topics=[topic_of(Patient.Signed)])}
    if not signed:
        return []
    return [subject for subject in app.subjects() if app.patient_id(subject) in signed]


def check_hashes(app: Any, subject: str, directory: UserDirectory | None = None) -> list[dict[str, Any]]:
    """:func:`signatures` plus ``hash_ok`` (the stored stream still hashes to what was signed) and
    ``signature`` (:func:`signature_status`). ``directory``: the user directory, if already read."""
    events = app.stream(subject)  # checks the site scope, and that the patient exists
    patient = fold(events)
    if directory is None:
        directory = app.directory()
    signed = {e.originator_version: e for e in events if isinstance(e, Patient.Signed)}
    rows = signatures(events)
    for row in rows:
        row["hash_ok"] = stream_digest(app, patient.id, row["stream_version"]) == row["stream_hash"]
        version = int(row["ref"].rsplit("#", 1)[1])
        row["signature"] = signature_status(signed[version], patient.subject, directory)
    return rows
