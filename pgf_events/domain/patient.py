"""The Patient aggregate: the only writer of a patient's history.

Public methods check a protocol rule and raise a :class:`DomainError` with a sentence a
coordinator understands; only then do they trigger an explicit, past-tense event whose ``apply``
changes state. Nothing is ever updated or deleted: a correction or void is a new event that
names the event it supersedes (``SUBJECT#N``), and the effective value of every record is
recomputed from the chain of corrections and voids that point at it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import attrs
from eventsourcing.domain import Aggregate

from pgf_events.domain import integrity
from pgf_events.domain import values as vo
from pgf_events.domain.entries import CORRECTION, SIGN, VOID, Entry, EntryLog
from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import latest_valid_date, parse_text
from pgf_events.domain.rules import eligibility
from pgf_events.domain.rules.entry import Item, Prior
from pgf_events.protocol import Protocol

PATIENT_NAMESPACE = UUID("6f1c1d4e-5a0b-4f7e-9a49-2f0c8e3b7d11")
SIGNATURE_MEANINGS = ("review", "approval")


def patient_id(subject: str, secret: bytes | None = None) -> UUID:
    """Deterministic aggregate id: subject codes are unique without a lookup table.

    With a ``secret`` (an encrypted store's key) the id is derived from an HMAC of the code, so
    the stored ids do not reveal subject codes to someone who can guess them.
    """
    if secret:
        return uuid5(PATIENT_NAMESPACE, hmac.new(secret, subject.encode(), hashlib.sha256).hexdigest())
    return uuid5(PATIENT_NAMESPACE, subject)


def make_ref(subject: str, version: int) -> str:
    return f"{subject}#{version}"


@attrs.frozen
class Context:
    """What a command needs besides its record: who, from which source, when, under which protocol."""

    recorded_by: str
    now: datetime
    protocol: Protocol
    source: str | None = None


class Patient(Aggregate, EntryLog):
    """A trial subject's stream: registration first, then every clinical fact and change."""

    # The aggregate's own event base, defined here so that every event below subclasses it as
    # written: the library would otherwise define each event class a second time (a subclass of the
    # one written, of the same name and topic), doubling the dataclass work at every CLI start.
    class Event(Aggregate.Event):
        pass

    class Registered(Event, Aggregate.Created):
        subject: str
        record: vo.Registration
        recorded_by: str
        source: str | None

    class Recorded(Event):
        """Base of the clinical events: a validated record, who entered it, and its source."""

        record: Any
        recorded_by: str
        source: str | None
        # A protocol deviation's acknowledgement (``--deviation``) and the deviations it covers,
        # [{"kind": ..., "ref": ...}]. Optional: events stored before issue 13 have neither.
        deviation: str | None = None
        acknowledged: list[dict[str, str]] | None = None

        def apply(self, aggregate: Patient) -> None:
            aggregate._add_record(self.originator_version, self.record)
            aggregate._acknowledge(self.acknowledged)

    class Screened(Recorded):
        record: vo.Screening

    class Consented(Recorded):
        record: vo.Consent

    class Enrolled(Recorded):
        record: vo.Enrolment

    class Infused(Recorded):
        record: vo.Infusion

    class Transfused(Recorded):
        record: vo.Transfusion

    class LabResulted(Recorded):
        record: vo.LabPanel

    class AdverseEventReported(Recorded):
        record: vo.AdverseEvent

    class InfectionDiagnosed(Recorded):
        record: vo.Infection

    class GvhdAssessed(Recorded):
        record: vo.GvhdAssessment

    class RelapseDiagnosed(Recorded):
        record: vo.Relapse

    class ContactRecorded(Recorded):
        record: vo.Contact

    class Died(Recorded):
        record: vo.Death

    class Withdrawn(Recorded):
        record: vo.Withdrawal

    class VitalSignsRecorded(Recorded):
        record: vo.VitalSigns

    class Corrected(Event):
        """Only the changed fields of the superseded event, revalidated as if newly entered."""

        supersedes: str
        changes: dict[str, Any]
        reason: str
        recorded_by: str
        source: str | None
        deviation: str | None = None  # as on Recorded
        acknowledged: list[dict[str, str]] | None = None

        def apply(self, aggregate: Patient) -> None:
            aggregate._add_change(self.originator_version, CORRECTION, self.supersedes, self.reason, self.changes)
            aggregate._acknowledge(self.acknowledged)

    class Voided(Event):
        supersedes: str
        reason: str
        recorded_by: str
        source: str | None
        deviation: str | None = None  # as on Recorded
        acknowledged: list[dict[str, str]] | None = None

        def apply(self, aggregate: Patient) -> None:
            aggregate._add_change(self.originator_version, VOID, self.supersedes, self.reason, {})
            aggregate._acknowledge(self.acknowledged)

    class Signed(Event):
        """An e-signature over the stream at ``stream_version``: what is signed, :mod:`pgf_events.signing`;
        validity, :mod:`pgf_events.audit.signatures` (version 1, before keys, reads back as legacy)."""

        class_version = 2
        meaning: str
        signed_at: datetime
        stream_version: int
        stream_hash: str
        recorded_by: str
        source: str | None
        key_id: str | None
        signature: str | None

        upcast_v1_v2 = staticmethod(lambda state: state.update(key_id=None, signature=None))  # before keys

        def apply(self, aggregate: Patient) -> None:
            aggregate.entries[self.originator_version] = Entry(version=self.originator_version, kind=SIGN)

    def __init__(self, subject: str, record: vo.Registration, recorded_by: str, source: str | None):
        self.subject = subject
        self.entries: dict[int, Entry] = {}
        # The versions of the records of each kind, in recording order, kept by the event applies.
        # Rules ask "the death", "the enrolment", "the infusions" on every command: an index makes
        # that O(records of that kind) instead of a scan of the whole stream (O(n^2) per patient).
        self._kinds: dict[str, list[int]] = {}
        # Deviation kinds acknowledged per record reference (from every event's ``acknowledged``).
        self.acknowledged: dict[str, set[str]] = {}
        self._prior: Prior | None = None  # the standing records as the entry rules see them (cached)
        self._batch: integrity.Batch | None = None  # changes whose whole-stream check waits for settle()
        self._add_record(1, record)

    @staticmethod
    def create_id(subject: str) -> UUID:
        return patient_id(subject)

    # ------------------------------------------------------------------ commands

    @classmethod
    def register(cls, subject: str, record: vo.Registration, ctx: Context, id: UUID | None = None) -> Patient:  # noqa: A002
        if record.date is None:
            record = attrs.evolve(record, date=ctx.now.date())
        _check_not_future(record, ctx)
        return cls._create(
            cls.Registered, id=id or patient_id(subject), subject=subject, record=record,
            recorded_by=ctx.recorded_by, source=ctx.source,
        )

    def record(self, event_class: type[Recorded], record: vo.Record, ctx: Context,
               deviation: str | None = None) -> None:
        """Record a clinical fact. Every kind's rules are the entry rules (rules/entry.py): impossible
        facts are refused, protocol deviations need ``deviation`` (the --deviation acknowledgement)."""
        self._record(event_class, record, ctx, deviation)

    def sign(self, meaning: str, stream_hash: str, ctx: Context, *, key_id: str, signature: str) -> None:
        """Sign the stream as it stands now (hash and Ed25519 signature made by the application)."""
        if meaning not in SIGNATURE_MEANINGS:
            raise ValidationError(f"--meaning must be one of {', '.join(SIGNATURE_MEANINGS)}, not {meaning!r}")
        self.trigger_event(self.Signed, meaning=meaning, signed_at=ctx.now, stream_version=self.version,
                           stream_hash=stream_hash, recorded_by=ctx.recorded_by, source=ctx.source, key_id=key_id,
                           signature=signature)

    def correct(self, version: int, changes: Mapping[str, Any], reason: str, ctx: Context,
                deviation: str | None = None, defer: bool = False) -> dict[str, Any]:
        """Supersede fields of an event (or of a correction, which chains). Returns the canonical changes."""
        reason = parse_text(reason, "reason", 500)
        entry = self._existing(version)
        _check_not_signature(self, entry)
        if entry.voided:
            raise RuleViolation(f"{self.ref(version)} is voided; it cannot be corrected")
        if entry.kind == VOID:
            raise RuleViolation(f"{self.ref(version)} is a void and has no fields; void it to reinstate the record")
        if not changes:
            raise ValidationError("a correction needs at least one --set FIELD=VALUE")
        root = self._entry(self._root(version))
        assert root.record is not None
        if entry.kind == CORRECTION:
            # Correcting a correction revises what that correction set: validate the result on the record.
            base = self._record_with(root.version, replace={version: {**entry.changes}})
            _, diff = base.corrected(changes)
            merged = {**entry.changes, **diff}
            if merged == entry.changes:
                raise ValidationError(f"the correction changes nothing in {self.ref(version)}")
        else:
            _, diff = root.record.corrected(changes)
            if not diff:
                raise ValidationError(f"the correction changes nothing in {self.ref(version)}")
        effective = {**entry.changes, **diff} if entry.kind == CORRECTION else diff
        acknowledged = self._check_change(version, effective, ctx, deviation, defer)
        self.trigger_event(
            self.Corrected, supersedes=self.ref(version), changes=diff, reason=reason,
            recorded_by=ctx.recorded_by, source=ctx.source, **integrity.ack_fields(deviation, acknowledged, defer),
        )
        return diff

    def void(self, version: int, reason: str, ctx: Context, deviation: str | None = None,
             defer: bool = False) -> None:
        reason = parse_text(reason, "reason", 500)
        entry = self._existing(version)
        _check_not_signature(self, entry)
        if version == 1:
            raise RuleViolation("the registration cannot be voided; correct its fields instead")
        if entry.voided:
            raise RuleViolation(f"{self.ref(version)} is already voided")
        acknowledged = self._check_change(version, None, ctx, deviation, defer)
        self.trigger_event(
            self.Voided, supersedes=self.ref(version), reason=reason, recorded_by=ctx.recorded_by, source=ctx.source,
            **integrity.ack_fields(deviation, acknowledged, defer),
        )

    def _check_change(self, version: int, changes: dict[str, Any] | None, ctx: Context, deviation: str | None,
                      defer: bool) -> list[dict[str, str]]:
        """Re-check the whole stream with a correction (``changes``) or void applied, now or, with
        ``defer`` (several related changes of one batch), once all apply: see :meth:`settle`."""
        if not defer:
            return integrity.check_change(self, version, changes, ctx, deviation, changed_fields=changes or ())
        if self._batch is None:
            self._batch = integrity.Batch(integrity.items(self))
        self._batch.change(self, version, changes)
        return []

    def settle(self, ctx: Context) -> None:
        """Check the deferred changes as a unit (raises like a single change would); then forget them."""
        batch, self._batch = self._batch, None
        if batch is not None:
            integrity.settle(self, batch, ctx)

    # ------------------------------------------------------------------ queries

    @property
    def registration(self) -> vo.Registration:
        record = self.entries[1].record
        assert isinstance(record, vo.Registration)
        return record

    def active(self, record_type: type[vo.Record]) -> list[tuple[int, Any]]:
        """(version, effective record) of every standing record of a type, in recording order."""
        entries = self.entries
        return [(v, entries[v].record) for v in self._kinds.get(record_type.KIND, ()) if not entries[v].voided]

    def clinical_records(self) -> Iterator[tuple[int, vo.Record]]:
        for e in self.entries.values():
            if e.record is not None and not e.voided and e.version != 1:
                yield e.version, e.record

    def _first(self, record_type: type[vo.Record]) -> tuple[int, Any] | None:
        entries = self.entries
        for v in self._kinds.get(record_type.KIND, ()):
            if not entries[v].voided:
                return v, entries[v].record
        return None

    @property
    def enrolment(self) -> tuple[int, vo.Enrolment] | None:
        return self._first(vo.Enrolment)

    @property
    def death(self) -> tuple[int, vo.Death] | None:
        return self._first(vo.Death)

    @property
    def withdrawal(self) -> tuple[int, vo.Withdrawal] | None:
        return self._first(vo.Withdrawal)

    def eligibility(self, params: Protocol) -> eligibility.Eligibility:
        screenings = [
            eligibility.ScreeningFacts(
                day=s.date, ref=self.ref(v), kps=s.kps,
                expected_survival_months=s.expected_survival_months, answers=dict(s.criterion),
            )
            for v, s in self.active(vo.Screening)
        ]
        consents = [eligibility.ConsentFacts(day=c.date, ref=self.ref(v)) for v, c in self.active(vo.Consent)]
        return eligibility.assess(self.registration.birth_date, screenings, consents, params)

    # ------------------------------------------------------------------ rules shared by all records

    def _record(self, event_class: type[Recorded], record: vo.Record, ctx: Context,
                deviation: str | None = None) -> None:
        acknowledged = integrity.check_new(self, record, ctx, deviation)
        self.trigger_event(event_class, record=record, recorded_by=ctx.recorded_by, source=ctx.source,
                           **integrity.ack_fields(deviation, acknowledged))

    def prior(self) -> Prior:
        """The standing records as the entry rules see them, kept up to date as records are added."""
        if self._prior is None:
            self._prior = integrity.prior_of(self)
        return self._prior

    def _add_record(self, version: int, record: vo.Record) -> None:
        super()._add_record(version, record)
        if self._prior is not None:
            self._prior.append(Item(self.ref(version), record))

    def _add_change(self, version: int, kind: str, supersedes: str, reason: str, changes: dict[str, Any]) -> None:
        self._prior = None
        super()._add_change(version, kind, supersedes, reason, changes)

    def _acknowledge(self, acknowledged: list[dict[str, str]] | None) -> None:
        if acknowledged:
            for a in acknowledged:
                self.acknowledged.setdefault(a["ref"], set()).add(a["kind"])
            self._prior = None


def _check_not_signature(patient: Patient, entry: Entry) -> None:
    if entry.kind == SIGN:
        raise RuleViolation(
            f"{patient.ref(entry.version)} is a signature, not a record; it cannot be corrected or voided "
            "(a later change to the record invalidates it)"
        )


def _check_not_future(record: vo.Record, ctx: Context) -> None:
    limit = latest_valid_date(ctx.now)
    for name, day in record.dates():
        if day > limit:
            raise ValidationError(f"--{name.replace('_', '-')} {day} is in the future")
