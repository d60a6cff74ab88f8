"""The ODM export's ClinicalData as it was written before issue 18: ElementTree elements built per
event and serialized (11k events/s). Kept here as the reference the text writer in
:mod:`pgf_events.audit.odm` must match byte for byte (tests/exports/test_odm_fast.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from pgf_events.audit.odm import Seen
from pgf_events.audit.odm_meta import _el, _group, flatten, odm_value, oid_part, site_oid, user_oid
from pgf_events.audit.odm_monitoring import monitoring_subject_data
from pgf_events.audit.source import fold, patient_streams, utc
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.patient import CORRECTION, SIGN, VOID, Patient


class Transactions:
    """Turns one patient's events into SubjectData elements, one per event (the ElementTree version)."""

    def __init__(self, subject: str, seen: Seen):
        self.subject = subject
        self.seen = seen
        self.patient: Patient | None = None

    def audit_record(self, parent: ET.Element, event: Any, reason: str | None) -> None:
        assert self.patient is not None
        record = _el(parent, "AuditRecord")
        _el(record, "UserRef", UserOID=user_oid(event.recorded_by))
        _el(record, "LocationRef", LocationOID=site_oid(self.patient.registration.site))
        _el(record, "DateTimeStamp", utc(event.timestamp))
        deviation = getattr(event, "deviation", None)  # a protocol deviation's acknowledgement (issue 13)
        reason = "; ".join(r for r in (reason, f"protocol deviation acknowledged: {deviation}" if deviation else None)
                           if r)
        if reason:
            _el(record, "ReasonForChange", reason)
        ref = self.patient.ref(event.originator_version)
        _el(record, "SourceID", f"{ref} | {event.source}" if event.source else ref)

    def container(self, kind: str, repeat: int, tx: str, subject_tx: str = "Context",
                  event_tx: str | None = None) -> tuple[ET.Element, ET.Element, ET.Element]:
        """SubjectData > StudyEventData > FormData > ItemGroupData (the SubjectData, event and group)."""
        assert self.patient is not None
        g = _group(kind)
        subject = _el(None, "SubjectData", SubjectKey=self.subject, TransactionType=subject_tx)
        if subject_tx == "Insert":
            _el(subject, "SiteRef", LocationOID=site_oid(self.patient.registration.site))
        event = _el(subject, "StudyEventData", StudyEventOID=f"SE.{g}",
                    StudyEventRepeatKey=None if kind == "register" else repeat, TransactionType=event_tx or tx)
        form = _el(event, "FormData", FormOID=f"F.{g}", TransactionType=tx)
        group = _el(form, "ItemGroupData", ItemGroupOID=f"IG.{g}", TransactionType=tx)
        return subject, event, group

    def items(self, group: ET.Element, values: dict[str, tuple[str, Any]], event: Any, reason: str | None) -> None:
        for oid, (tx, value) in values.items():
            item = _el(group, "ItemData", ItemOID=oid, TransactionType=tx,
                       Value=None if tx == "Remove" else odm_value(value))
            self.audit_record(item, event, reason)

    def inserted(self, kind: str, repeat: int, record: Any, event: Any, reason: str | None,
                 subject_tx: str = "Context") -> ET.Element:
        subject, _, group = self.container(kind, repeat, "Insert", subject_tx=subject_tx)
        self.items(group, {oid: ("Insert", v) for oid, v in flatten(kind, record).items() if v is not None},
                   event, reason)
        return subject

    def of(self, event: Any) -> ET.Element:
        kind = EVENT_KINDS[type(event)]
        before: tuple[bool, Any] | None = None
        root = 0
        if kind in (CORRECTION, VOID):
            assert self.patient is not None
            root = self.patient._root(int(event.supersedes.rpartition("#")[2]))
            entry = self.patient.entries[root]
            before = (entry.voided, entry.record)
        self.patient = patient = event.mutate(self.patient)
        assert patient is not None
        self.seen.users.add(event.recorded_by)
        if kind == "register":
            self.seen.site(patient)
            return self.inserted(kind, 1, event.record, event, None, subject_tx="Insert")
        if kind == SIGN:
            return self.signature(event)
        if kind not in (CORRECTION, VOID):
            return self.inserted(kind, event.originator_version, event.record, event, None)
        assert before is not None
        entry = patient.entries[root]
        was_voided, old = before
        if entry.kind == "register":
            self.seen.site(patient)
        if not was_voided and entry.voided:
            subject, study_event, _ = self.container(entry.kind, root, "Remove")
            study_event.remove(study_event[0])  # the whole repeat is removed: no form or items listed
            self.audit_record(study_event, event, event.reason)
            return subject
        if was_voided and not entry.voided:
            return self.inserted(entry.kind, root, entry.record, event, event.reason)
        if not entry.voided:
            new_values, old_values = flatten(entry.kind, entry.record), flatten(entry.kind, old)
            changes = {}
            for oid, value in new_values.items():
                previous = old_values.get(oid)
                if value == previous:
                    continue
                changes[oid] = ("Insert", value) if previous is None else ("Remove", None) if value is None \
                    else ("Update", value)
            subject, _, group = self.container(entry.kind, root, "Context")
            self.items(group, changes, event, event.reason)
            return subject
        subject = _el(None, "SubjectData", SubjectKey=self.subject, TransactionType="Context")
        self.audit_record(subject, event, event.reason)  # a change to a record that stays voided: no data
        return subject

    def signature(self, event: Any) -> ET.Element:
        assert self.patient is not None
        subject = _el(None, "SubjectData", SubjectKey=self.subject, TransactionType="Context")
        self.audit_record(subject, event, None)
        signature = _el(subject, "Signature", ID=f"SIG.{oid_part(self.subject)}.{event.originator_version}")
        _el(signature, "UserRef", UserOID=user_oid(event.recorded_by))
        _el(signature, "LocationRef", LocationOID=site_oid(self.patient.registration.site))
        _el(signature, "SignatureRef", SignatureOID=f"SD.{event.meaning.upper()}")
        _el(signature, "DateTimeStamp", utc(event.signed_at))
        key = getattr(event, "key_id", None)
        signed = f"; Ed25519 signature by key {key}: {event.signature}" if key else ""
        _el(signature, "CryptoBindingManifest",
            f"SHA-256 chain (pgf-chain/1) over {self.subject}#1..#{event.stream_version}: {event.stream_hash}{signed}")
        return subject


def snapshot_subject(subject: str, events: list[Any], seen: Seen) -> ET.Element:
    """One SubjectData with every standing record's current values (voided records left out)."""
    patient = fold(events)
    seen.users.update(e.recorded_by for e in events)
    seen.site(patient)
    element = _el(None, "SubjectData", SubjectKey=subject)
    _el(element, "SiteRef", LocationOID=site_oid(patient.registration.site))
    for version, entry in sorted(patient.entries.items()):
        if entry.record is None or entry.voided or entry.kind in (CORRECTION, VOID, SIGN):
            continue
        g = _group(entry.kind)
        event = _el(element, "StudyEventData", StudyEventOID=f"SE.{g}",
                    StudyEventRepeatKey=None if entry.kind == "register" else version)
        group = _el(_el(event, "FormData", FormOID=f"F.{g}"), "ItemGroupData", ItemGroupOID=f"IG.{g}")
        for oid, value in flatten(entry.kind, entry.record).items():
            if value is not None:
                _el(group, "ItemData", ItemOID=oid, Value=odm_value(value))
    return element


def subject_data(app: Any, seen: Seen, as_of: datetime | None, snapshot: bool,
                 subjects: list[str] | None = None) -> Iterator[str]:
    """What ``odm.subject_data`` yields, built as ElementTree elements and serialized."""
    for subject, events in patient_streams(app, as_of, subjects):
        if snapshot:
            yield ET.tostring(snapshot_subject(subject, events, seen), encoding="unicode")
            continue
        transactions = Transactions(subject, seen)
        for event in events:
            yield ET.tostring(transactions.of(event), encoding="unicode")
        assert transactions.patient is not None
        for element in monitoring_subject_data(app, subject, transactions.patient, seen, as_of):
            yield ET.tostring(element, encoding="unicode")
