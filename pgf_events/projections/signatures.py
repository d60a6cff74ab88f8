"""Which electronic signatures a patient's events hold, and which still stand (a pure reader).

Signing is a use case of the application (:mod:`pgf_events.signing`); checking a signature offline
against its signer's key is an audit (:mod:`pgf_events.audit.signatures`). The history and the
status documents only need this: every ``Patient.Signed`` event, and whether a later event that is
not a signature has invalidated it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pgf_events.domain.patient import Patient, make_ref


def signatures(patient_events: Iterable[Any]) -> list[dict[str, Any]]:
    """Every signature in a patient's events (oldest first), valid or invalidated. Pure.

    Each: ``ref``, ``signer``, ``meaning``, ``signed_at`` (UTC), ``stream_version`` (the last event
    it covers), ``stream_hash``, ``key_id`` (None: a legacy signature, stored before keys), ``valid``
    and ``invalidated_by`` (the ref of the first later event that is not a signature, or None).
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
                "stream_hash": event.stream_hash, "key_id": event.key_id, "valid": True, "invalidated_by": None,
            })
            continue
        for signature in out:
            if signature["valid"]:
                signature["valid"] = False
                signature["invalidated_by"] = make_ref(subject, version)
    return out
