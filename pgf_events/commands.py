"""The commands a coordinator gives (record, correct, void), their results, and the unit of work
that applies a batch of them to the aggregates before one save (:class:`TrialConduct` runs it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
from eventsourcing.application import AggregateNotFoundError

from pgf_events import topics  # noqa: F401 - every stored name registered before a unit of work makes an event
from pgf_events.domain import integrity, kinds
from pgf_events.domain.errors import DomainError, DuplicatePatientError, RuleViolation, ValidationError
from pgf_events.domain.imports import IdempotencyKey, fingerprint, key_id
from pgf_events.domain.parsing import parse_datetime, parse_text, site_local
from pgf_events.domain.patient import Context, Patient, make_ref
from pgf_events.formatting import iso, jsonable

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

_SUBJECT_RE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$")
_REF_RE = re.compile(r"^(?P<subject>[^#\s]+)#(?P<version>\d{1,9})$")


def normalise_subject(subject: Any) -> str:
    """Subject codes are case-insensitive and stored upper-case: ``s001`` is ``S001``."""
    if not isinstance(subject, str) or not _SUBJECT_RE.match(subject.strip().upper()):
        raise ValidationError(
            f"subject code {subject!r} must be 1–32 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return subject.strip().upper()


def parse_ref(ref: Any) -> tuple[str, int]:
    match = _REF_RE.match(ref.strip()) if isinstance(ref, str) else None
    if not match or int(match["version"]) < 1:
        raise ValidationError(f"event reference {ref!r} must look like S001#3")
    return normalise_subject(match["subject"]), int(match["version"])


@attrs.frozen
class Command:
    """One thing a coordinator asks for: record a kind, correct or void. ``line`` is for import errors."""

    action: str  # "record" | "correct" | "void"
    subject: str = ""
    kind: str = ""
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    ref: str = ""
    reason: str | None = None
    source: str | None = None
    line: int | None = None
    answers: str | None = None  # a query (S001-Q1) this correction or void answers
    deviation: str | None = None  # the acknowledgement a protocol deviation needs (--deviation)
    key: str | None = None  # an idempotency key (--key): a retry returns the original reference


@attrs.frozen
class Result:
    ref: str
    subject: str
    version: int
    kind: str
    recorded_at: datetime | None = None
    recorded_by: str = ""
    changes: Mapping[str, Any] = attrs.field(factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ref": self.ref, "subject": self.subject, "version": self.version, "kind": self.kind,
            "recorded_at": iso(self.recorded_at),
            "recorded_by": self.recorded_by,
        }
        if self.changes:
            out["changes"] = {k: jsonable(v) for k, v in self.changes.items()}
        return out


class BatchRejected(DomainError):
    """Some commands of a batch failed; nothing was written. ``errors`` is [(line, message)]."""

    def __init__(self, errors: list[tuple[int | None, str]]):
        self.errors = errors
        first = errors[0]
        where = f"line {first[0]}: " if first[0] is not None else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}{first[1]}{more}")


class UnitOfWork:
    """Aggregates loaded once, changed by many commands, saved together."""

    def __init__(self, app: TrialConduct, user: str, defer_changes: bool = False):
        self.app = app
        self.user = user
        self.now = app.clock()
        self.patients: dict[str, Patient] = {}
        self._recorded: dict[str, dict[int, datetime]] = {}  # recorded times of the loaded patients' versions
        self._results: list[tuple[Patient, int, str] | Result] = []
        self._contexts: dict[str | None, Context] = {}
        self.reviews: dict[str, Any] = {}  # the review streams (queries, freeze) of the patients written to
        self._lock_checked = False
        self._keys: dict[str, Any] = {}  # idempotency keys used by this unit (IdempotencyKey)
        # In a batch of several commands, corrections and voids are checked as a unit (after all of
        # them apply: settle), so related changes that are only consistent together can be made.
        self.defer_changes = defer_changes
        self._deferred: dict[str, int | None] = {}  # subject -> line of its last deferred change
        # The patients' new events in the order the commands made them: saved in that order, so the
        # log (and its chain) follows the commands whatever patients they interleave, as the bulk
        # import (:mod:`pgf_events.bulk`), which writes as it goes, stores them.
        self._order: list[Any] = []

    def _context(self, source: str | None) -> Context:
        try:  # one Context per source text: a visit sheet repeats a handful of sources
            return self._contexts[source]
        except (KeyError, TypeError):
            pass
        if source is not None:
            source = parse_text(source, "source", 200)
        ctx = Context(recorded_by=self.user, now=self.now, protocol=self.app.protocol, source=source)
        if isinstance(source, str) or source is None:
            self._contexts[source] = ctx
        return ctx

    def _load(self, subject: str) -> Patient:
        if subject not in self.patients:
            from pgf_events.guards import check_not_frozen, review_of  # noqa: PLC0415 - loaded on first write

            # The review first: the patient's version read next is what the save is checked against,
            # so nothing slower than needed sits between that read and the save.
            review = review_of(self.app, subject, create=False)
            self.patients[subject], self._recorded[subject] = self.app.patient_to_write(subject)
            self.reviews[subject] = review
            check_not_frozen(review)
        return self.patients[subject]

    def _answering(self, command: Command, subject: str) -> Any:
        """The review holding the query ``command.answers`` (checked before the change is applied), or None."""
        if not command.answers:
            return None
        from pgf_events.domain.review import parse_qid  # noqa: PLC0415 - loaded on first write
        from pgf_events.guards import review_of  # noqa: PLC0415

        qid_subject, _ = parse_qid(command.answers)
        if qid_subject != subject:
            raise ValidationError(f"--answers {command.answers}: that query is not about patient {subject}")
        review = self.reviews.get(subject) or review_of(self.app, subject)
        assert review is not None  # created when missing
        self.reviews[subject] = review
        query = review.query(command.answers)
        if query.status == "closed":
            raise RuleViolation(f"query {query.qid} is closed; reopen it before answering")
        return review

    def _answer(self, command: Command, review: Any, patient: Patient) -> None:
        """The correction or void just applied answers the query ``command.answers``."""
        if review is None:
            return
        what = "corrected" if command.action == "correct" else "voided"
        review.answer(command.answers.strip().upper(), f"{what}: {command.reason}", self.user,  # type: ignore[union-attr]
                      answer_ref=make_ref(patient.subject, patient.version))

    def apply(self, command: Command) -> None:
        """Apply one command to the aggregates (nothing is saved until :meth:`commit`)."""
        touched = self.patients.get(_subject_of(command))
        before = len(touched.pending_events) if touched is not None else 0
        self._apply(command)
        patient = self.patients.get(_subject_of(command))
        if patient is not None:
            self._order.extend(patient.pending_events[before if patient is touched else 0:])

    def _apply(self, command: Command) -> None:
        if not self._lock_checked:
            from pgf_events.guards import check_not_locked  # noqa: PLC0415 - loaded on first write

            check_not_locked(self.app)
            self._lock_checked = True
        ctx = self._context(command.source)
        if command.action == "record":
            subject = normalise_subject(command.subject)
            spec = kinds.kind(command.kind)
            fields = command.fields
            if command.kind != "register" and _typed_times(spec.record, fields):
                fields = self._site_local(self._load(subject), spec.record, fields)
            record = spec.record.from_input(fields)
            key = None
            if command.key is not None:
                key, replayed = self._replayed(command, subject, record)
                if replayed is not None:
                    self._results.append(replayed)
                    return
            if command.kind == "register":
                if subject in self.patients or self.app.has_patient(subject):
                    raise DuplicatePatientError(subject)
                self.app.check_hidden(subject)  # type: ignore[attr-defined]  # another site's (row-level security)
                self.app.check_site(subject, record.site)  # type: ignore[attr-defined]
                if command.deviation is not None:  # a registration is never a protocol deviation
                    integrity.clean_deviation(command.deviation)
                    raise ValidationError(integrity.NO_DEVIATION)
                patient = Patient.register(subject, record, ctx, id=self.app.patient_id(subject))  # type: ignore[arg-type]
                self.patients[subject] = patient
            else:
                patient = self._load(subject)
                if spec.command:
                    getattr(patient, spec.command)(record, ctx, command.deviation)
                else:
                    patient.record(spec.event, record, ctx, command.deviation)
            self._results.append((patient, patient.version, command.kind))
            if key is not None:
                self._keys[key[0]] = IdempotencyKey.use(key[0], key[1], make_ref(subject, patient.version),
                                                        command.kind, self.user)
        elif command.action == "correct":
            subject, version = parse_ref(command.ref)
            patient = self._load(subject)
            review = self._answering(command, subject)
            root = patient.entries.get(version)
            while root is not None and root.record is None and root.target is not None:  # a correction's record
                root = patient.entries.get(root.target)
            fields = command.fields
            if root is not None and root.record is not None:
                fields = self._site_local(patient, type(root.record), fields)
            patient.correct(version, dict(fields), command.reason or "", ctx, command.deviation,
                            defer=self.defer_changes)
            if self.defer_changes:
                self._deferred[subject] = command.line
            self._answer(command, review, patient)
            self._results.append((patient, patient.version, "correct"))
        elif command.action == "void":
            subject, version = parse_ref(command.ref)
            patient = self._load(subject)
            review = self._answering(command, subject)
            patient.void(version, command.reason or "", ctx, command.deviation, defer=self.defer_changes)
            if self.defer_changes:
                self._deferred[subject] = command.line
            self._answer(command, review, patient)
            self._results.append((patient, patient.version, "void"))
        else:
            raise ValidationError(f"unknown action {command.action!r}")

    def _site_local(self, patient: Patient, record: type, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """Times typed without an offset are local time at the patient's site (``site_timezones``)."""
        names = _time_fields(record)
        if not _typed_times(record, fields):
            return fields
        zone = self.app.protocol.site_zone(patient.registration.site)
        return {k: site_local(v, zone) if k in names else v for k, v in fields.items()}

    def _replayed(self, command: Command, subject: str, record: Any) -> tuple[tuple[str, str], Result | None]:
        """(key, fingerprint) of a keyed command, and the original Result if the key was already used for it."""
        key = parse_text(command.key, "key", 200)
        mark = fingerprint({"record": command.kind, "subject": subject, "fields": record.as_input(),
                            "source": command.source, "deviation": command.deviation})
        used: IdempotencyKey | None = self._keys.get(key)
        if used is None:
            try:
                used = self.app.repository.get(key_id(key))
            except AggregateNotFoundError:
                return (key, mark), None
        if used.fingerprint != mark:
            raise ValidationError(
                f"--key {key} was already used for another command ({used.kind} {used.ref}); "
                "a retry must repeat the same command, a new command needs a new key"
            )
        ref_subject, version = parse_ref(used.ref)
        return (key, mark), Result(ref=used.ref, subject=ref_subject, version=version, kind=used.kind,
                                   recorded_at=used.created_on, recorded_by=used.recorded_by)

    def settle(self) -> list[tuple[int | None, str]]:
        """Check each patient's deferred changes as a unit; errors name the patient's last change line."""
        errors: list[tuple[int | None, str]] = []
        for subject, line in self._deferred.items():
            try:
                self.patients[subject].settle(self._context(None))
            except DomainError as e:
                errors.append((line, str(e)))
        return errors

    def commit(self, extra: Sequence[Any] = ()) -> None:
        """Save every changed patient, and any extra aggregate (an ImportBatch, keys), in one transaction."""
        changed = [p for p in self.patients.values() if p.pending_events]
        self._events = {(p.subject, e.originator_version): e for p in changed for e in p.pending_events}
        from pgf_events.guards import auto_queries  # noqa: PLC0415 - loaded on first write

        kept = self.app.edit_facts
        checked = changed if kept is None else [_Checked(p, kept.get(p.id)) for p in changed]
        auto_queries(self.app, checked, self.reviews, self.now)
        reviews = [r for r in self.reviews.values() if r is not None and r.pending_events]
        keys = [k for k in self._keys.values() if k.pending_events]
        tracked = {id(e) for e in self._order}
        events = [*self._order, *(e for p in changed for e in p.pending_events if id(e) not in tracked)]
        events += [e for a in (*reviews, *extra, *keys) for e in a.pending_events]
        if events:  # one transaction: the records, their automatic queries, the batch and the keys
            self.app.check_clock([e.timestamp for e in events])
            try:
                self.app.save_events(events)
            finally:
                self.app.check_clock([])
        if kept is not None:  # saved: the facts describe the stored streams at these versions
            if len(kept) >= FACTS_KEPT:
                kept.clear()
            kept.update((c.id, (c.version, c.facts)) for c in checked)  # type: ignore[union-attr]
        # Saved: a long-running process keeps the patients for its next command (patient_cache).
        self.app.keep_patients((p, self._recorded.get(s, {})) for s, p in self.patients.items())

    def results(self) -> list[Result]:
        out = []
        for item in self._results:
            if isinstance(item, Result):
                out.append(item)
                continue
            patient, version, kind = item
            event = self._events.get((patient.subject, version))
            changes = getattr(event, "changes", {}) if event is not None else {}
            out.append(Result(
                ref=make_ref(patient.subject, version), subject=patient.subject, version=version, kind=kind,
                recorded_at=getattr(event, "timestamp", None), recorded_by=self.user, changes=changes,
            ))
        return out


FACTS_KEPT = 2_000  # patients' edit facts a long-running process keeps (TrialConduct.edit_facts)


class _Checked:
    """A changed patient as the automatic queries see it in a long-running process: its edit facts
    built on those kept from its last save in this process (``facts_after``), kept in turn once saved."""

    __slots__ = ("facts", "id", "subject", "version")

    def __init__(self, patient: Patient, kept: Any):
        from pgf_events.domain.rules.editchecks import facts_after  # noqa: PLC0415 - loaded on first write

        self.subject, self.id, self.version = patient.subject, patient.id, patient.version
        self.facts = facts_after(kept, patient)

    def edit_checks(self, protocol: Any) -> list[Any]:
        return self.facts.findings(protocol)  # type: ignore[no-any-return]


def _subject_of(command: Command) -> str:
    """The patient a command writes to, normalised; "" if it names none that could be valid."""
    try:
        return normalise_subject(command.subject) if command.action == "record" else parse_ref(command.ref)[0]
    except ValidationError:
        return ""


@functools.cache
def _time_fields(record: type) -> frozenset[str]:
    return frozenset(a.name for a in attrs.fields(record) if a.metadata.get("parse") is parse_datetime)


def _typed_times(record: type, fields: Mapping[str, Any]) -> bool:
    """Whether any date-time field was typed as text (only those can lack an offset)."""
    return any(isinstance(fields.get(n), str) for n in _time_fields(record))


def check_user(user: Any) -> str:
    try:
        return parse_text(user, "user", 64)
    except ValidationError:
        raise ValidationError("--user (or PGF_USER) must name who is recording") from None
