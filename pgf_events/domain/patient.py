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

from pgf_events.domain import values as vo
from pgf_events.domain.entries import CORRECTION, SIGN, VOID, Entry, EntryLog
from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import latest_valid_date, parse_text
from pgf_events.domain.rules import eligibility
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

        def apply(self, aggregate: Patient) -> None:
            aggregate._add_record(self.originator_version, self.record)

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

    class Corrected(Event):
        """Only the changed fields of the superseded event, revalidated as if newly entered."""

        supersedes: str
        changes: dict[str, Any]
        reason: str
        recorded_by: str
        source: str | None

        def apply(self, aggregate: Patient) -> None:
            aggregate._add_change(self.originator_version, CORRECTION, self.supersedes, self.reason, self.changes)

    class Voided(Event):
        supersedes: str
        reason: str
        recorded_by: str
        source: str | None

        def apply(self, aggregate: Patient) -> None:
            aggregate._add_change(self.originator_version, VOID, self.supersedes, self.reason, {})

    class Signed(Event):
        """An electronic signature (not a clinical record) over the stream as it stood at ``stream_version``.

        ``stream_hash`` is the chain hash over this patient's stored events 1..stream_version
        (:func:`pgf_events.audit.chain.stream_hash`); any later event other than a signature
        invalidates it (:func:`pgf_events.audit.signatures.signatures`).
        """

        meaning: str
        signed_at: datetime
        stream_version: int
        stream_hash: str
        recorded_by: str
        source: str | None

        def apply(self, aggregate: Patient) -> None:
            aggregate.entries[self.originator_version] = Entry(version=self.originator_version, kind=SIGN)

    def __init__(self, subject: str, record: vo.Registration, recorded_by: str, source: str | None):
        self.subject = subject
        self.entries: dict[int, Entry] = {}
        # The versions of the records of each kind, in recording order, kept by the event applies.
        # Rules ask "the death", "the enrolment", "the infusions" on every command: an index makes
        # that O(records of that kind) instead of a scan of the whole stream (O(n^2) per patient).
        self._kinds: dict[str, list[int]] = {}
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

    def record(self, event_class: type[Recorded], record: vo.Record, ctx: Context) -> None:
        """Record a clinical fact whose kind has no rule beyond the ones every record obeys."""
        self._record(event_class, record, ctx)

    def enrol(self, record: vo.Enrolment, ctx: Context) -> None:
        if self.enrolment is not None:
            raise RuleViolation(f"patient {self.subject} is already enrolled ({self.ref(self.enrolment[0])})")
        if self.withdrawal is not None:
            raise RuleViolation(f"patient {self.subject} was withdrawn on {self.withdrawal[1].date}")
        result = self.eligibility(ctx.protocol)
        if result.status == "ineligible":
            why = "; ".join(result.reasons[c] for c in result.unmet)
            raise RuleViolation(f"patient {self.subject} is not eligible: {why}")
        if result.status == "pending":
            raise RuleViolation(
                f"patient {self.subject} cannot be enrolled while eligibility is pending "
                f"(not yet assessed: {', '.join(result.unassessed)})"
            )
        consents = self.active(vo.Consent)
        if not any(c.date <= record.date for _, c in consents):
            raise RuleViolation(f"the enrolment date {record.date} is before informed consent")
        self._record(self.Enrolled, record, ctx)

    def infuse(self, record: vo.Infusion, ctx: Context) -> None:
        if self.enrolment is None:
            raise RuleViolation(f"patient {self.subject} is not enrolled; infusions need an enrolment first")
        enrolled_on = self.enrolment[1].date
        if record.date < enrolled_on:
            raise RuleViolation(f"the infusion date {record.date} is before enrolment on {enrolled_on}")
        if self.withdrawal is not None and record.date >= self.withdrawal[1].date:
            raise RuleViolation(f"patient {self.subject} was withdrawn on {self.withdrawal[1].date}; no further infusions")
        if self.death is not None and record.date > self.death[1].date:
            raise RuleViolation(f"patient {self.subject} died on {self.death[1].date}; no further infusions")
        infusions = self.active(vo.Infusion)
        limit = ctx.protocol.planned_doses
        if len(infusions) >= limit:
            raise RuleViolation(f"all {limit} protocol doses are already recorded for {self.subject}")
        gap = ctx.protocol.min_dose_gap_days
        for version, other in infusions:
            days = abs((record.date - other.date).days)
            if days < gap:
                raise RuleViolation(
                    f"the infusion on {record.date} is {days} day(s) from the one on {other.date} "
                    f"({self.ref(version)}); doses must be at least {gap} days apart"
                )
        self._record(self.Infused, record, ctx)

    def record_death(self, record: vo.Death, ctx: Context) -> None:
        if self.death is not None:
            raise RuleViolation(f"patient {self.subject}'s death is already recorded ({self.ref(self.death[0])})")
        later = [
            (v, r, name, day) for v, r in self.clinical_records()
            for name, day in r.clinical_dates() if day > record.date
        ]
        if later:
            version, other, name, day = later[0]
            raise RuleViolation(
                f"{self.ref(version)} ({other.KIND}) has {name} {day}, after the death date {record.date}"
            )
        self._record(self.Died, record, ctx)

    def withdraw(self, record: vo.Withdrawal, ctx: Context) -> None:
        if self.withdrawal is not None:
            raise RuleViolation(f"patient {self.subject} is already withdrawn ({self.ref(self.withdrawal[0])})")
        self._record(self.Withdrawn, record, ctx)

    def sign(self, meaning: str, stream_hash: str, ctx: Context) -> None:
        """Sign the stream as it stands now; ``stream_hash`` is computed over the stored events."""
        if meaning not in SIGNATURE_MEANINGS:
            raise ValidationError(f"--meaning must be one of {', '.join(SIGNATURE_MEANINGS)}, not {meaning!r}")
        self.trigger_event(
            self.Signed, meaning=meaning, signed_at=ctx.now, stream_version=self.version,
            stream_hash=stream_hash, recorded_by=ctx.recorded_by, source=ctx.source,
        )

    def correct(self, version: int, changes: Mapping[str, Any], reason: str, ctx: Context) -> dict[str, Any]:
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
            new = self._record_with(root.version, replace={version: merged})
        else:
            new, diff = root.record.corrected(changes)
            if not diff:
                raise ValidationError(f"the correction changes nothing in {self.ref(version)}")
        _check_not_future(new, ctx)
        self._check_dates_in_life(new, exclude=root.version)
        self.trigger_event(
            self.Corrected, supersedes=self.ref(version), changes=diff, reason=reason,
            recorded_by=ctx.recorded_by, source=ctx.source,
        )
        return diff

    def void(self, version: int, reason: str, ctx: Context) -> None:
        reason = parse_text(reason, "reason", 500)
        entry = self._existing(version)
        _check_not_signature(self, entry)
        if version == 1:
            raise RuleViolation("the registration cannot be voided; correct its fields instead")
        if entry.voided:
            raise RuleViolation(f"{self.ref(version)} is already voided")
        self.trigger_event(
            self.Voided, supersedes=self.ref(version), reason=reason,
            recorded_by=ctx.recorded_by, source=ctx.source,
        )

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

    def _record(self, event_class: type[Recorded], record: vo.Record, ctx: Context) -> None:
        _check_not_future(record, ctx)
        self._check_dates_in_life(record)
        self.trigger_event(event_class, record=record, recorded_by=ctx.recorded_by, source=ctx.source)

    def _check_dates_in_life(self, record: vo.Record, exclude: int | None = None) -> None:
        if isinstance(record, vo.Registration):
            birth = record.birth_date
            for version, other in self.clinical_records():
                for name, day in other.dates():
                    if day < birth:
                        raise ValidationError(
                            f"{self.ref(version)} has {name} {day}, before the birth date {birth}"
                        )
            return
        birth = self.registration.birth_date
        for name, day in record.dates():
            if day < birth:
                raise ValidationError(f"--{name.replace('_', '-')} {day} is before the birth date {birth}")
        death = self.death
        if death is not None and death[0] != exclude and not isinstance(record, vo.Death):
            after = [(name, day) for name, day in record.clinical_dates() if day > death[1].date]
            if after:
                name, day = after[0]
                raise RuleViolation(
                    f"patient {self.subject} died on {death[1].date}; nothing clinical can be dated after that "
                    f"(--{name.replace('_', '-')} {day}; correct or void {self.ref(death[0])} if the death is wrong)"
                )


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
