"""TrialConduct: the application service every user goes through (CLI, import, demo, tests).

One imperative entry point per use case. Every write goes through a :class:`UnitOfWork`: the
commands are checked against the aggregates as the batch has changed them, then all new events are
saved in one transaction (atomic across patients). A concurrent writer to the same patient makes
the save fail on the stream's version; the whole unit is then re-run on fresh state, so no event
is ever lost or silently dropped.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, OperationalError, Transcoder

from pgf_events import transcodings
from pgf_events.domain import values as vo
from pgf_events.domain.errors import (
    AccessDenied,
    ConcurrencyError,
    DomainError,
    DuplicatePatientError,
    PatientNotFoundError,
    PgfError,
    StoreError,
    ValidationError,
)
from pgf_events.domain.patient import RECORD_COMMANDS, Context, Patient, make_ref, patient_id
from pgf_events.domain.users import DIRECTORY_ID, PERMISSIONS, UserDirectory
from pgf_events.gc_tuning import fewer_collections
from pgf_events.protocol import DEFAULT_PROTOCOL, Protocol
from pgf_events.signing import SigningUseCases
from pgf_events.store import CIPHER_ENV, StoreConfig, parse_url, prepare

if TYPE_CHECKING:
    from pgf_events.domain.imports import ImportBatch

_SUBJECT_RE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$")
_REF_RE = re.compile(r"^(?P<subject>[^#\s]+)#(?P<version>\d{1,9})$")
MAX_ATTEMPTS = 8


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
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z") if self.recorded_at else None,
            "recorded_by": self.recorded_by,
        }
        if self.changes:
            out["changes"] = {k: _jsonable(v) for k, v in self.changes.items()}
        return out


class BatchRejected(DomainError):
    """Some commands of a batch failed; nothing was written. ``errors`` is [(line, message)]."""

    def __init__(self, errors: list[tuple[int | None, str]]):
        self.errors = errors
        first = errors[0]
        where = f"line {first[0]}: " if first[0] is not None else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}{first[1]}{more}")


class TrialConduct(SigningUseCases, Application[Any]):
    name = "pgf"
    is_snapshotting_enabled = False

    def __init__(self, store: StoreConfig, protocol: Protocol = DEFAULT_PROTOCOL,
                 clock: Callable[[], datetime] | None = None):
        self.store = store
        self.protocol = protocol
        self.clock = clock or (lambda: datetime.now(UTC))
        self.conflicts_retried = 0  # saves re-run because another writer got there first
        prepare(store)
        self._id_secret = base64.b64decode(store.cipher_key) if store.cipher_key else None
        try:
            super().__init__(env=store.env)
        except OperationalError as e:
            raise StoreError(f"cannot open the store {store.display}: {e}") from None
        self._check_cipher()

    def _check_cipher(self) -> None:
        """Refuse, with a clear error, a store encrypted with another key (or with none)."""
        first = self.recorder.select_notifications(start=1, limit=1)
        if not first:
            return
        try:
            self.mapper.to_domain_event(first[0])
        except Exception:  # noqa: BLE001 - any failure to decode the first event means the wrong key
            try:
                json.loads(first[0].state)
                plaintext = True
            except ValueError:
                plaintext = False
            if self.store.cipher_key and plaintext:
                raise StoreError(f"the store {self.store.display} is not encrypted; unset {CIPHER_ENV}") from None
            if self.store.cipher_key:
                raise StoreError(f"{CIPHER_ENV} does not open the store {self.store.display} (wrong key)") from None
            raise StoreError(f"the store {self.store.display} is encrypted; set {CIPHER_ENV} to its key") from None

    def patient_id(self, subject: str) -> UUID:
        return patient_id(subject, self._id_secret)

    @classmethod
    def open(cls, url: str | None = None, protocol: Protocol = DEFAULT_PROTOCOL) -> TrialConduct:
        return cls(parse_url(url), protocol)

    def construct_mapper(self) -> Mapper[Any]:
        base = super().construct_mapper()
        return transcodings.FastMapper(base.transcoder, compressor=base.compressor, cipher=base.cipher)

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON format, read and written with orjson (see :mod:`pgf_events.transcodings`)."""
        transcoder = transcodings.FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)  # type: ignore[arg-type]
        transcodings.register_all(transcoder)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ writing

    def record(self, kind: str, subject: str, fields: Mapping[str, Any], *, user: str,
               source: str | None = None) -> Result:
        return self.execute([Command("record", subject=subject, kind=kind, fields=fields, source=source)], user=user)[0]

    def correct(self, ref: str, changes: Mapping[str, Any], reason: str, *, user: str,
                source: str | None = None) -> Result:
        return self.execute([Command("correct", ref=ref, fields=changes, reason=reason, source=source)], user=user)[0]

    def void(self, ref: str, reason: str, *, user: str, source: str | None = None) -> Result:
        return self.execute([Command("void", ref=ref, reason=reason, source=source)], user=user)[0]

    def import_batch(self, commands: Sequence[Command], *, digest: str, file_name: str, user: str,
                     progress: Callable[[int], None] | None = None) -> list[Result] | ImportBatch:
        """Execute an imported file once: returns its results, or the earlier ImportBatch if already done."""
        from pgf_events.domain.imports import ImportBatch, import_id  # noqa: PLC0415 - imports only

        def already() -> ImportBatch | None:
            try:
                return self.repository.get(import_id(digest), projector_func=_project)
            except AggregateNotFoundError:
                return None

        done = already()
        if done is not None:
            return done

        def batch(count: int) -> list[Any]:
            return [ImportBatch.record(digest, file_name, len(commands), count, user)]

        try:
            return self.execute(commands, user=user, progress=progress, extra=batch)
        except ConcurrencyError:
            done = already()  # the same file imported by someone else at the same moment
            if done is not None:
                return done
            raise

    def execute(self, commands: Sequence[Command], *, user: str,
                progress: Callable[[int], None] | None = None, dry_run: bool = False,
                extra: Callable[[int], list[Any]] | None = None) -> list[Result]:
        """Check every command, then store all their events at once, or nothing.

        A single failing command raises its own error; in a batch of several, every failure is
        collected into one :class:`BatchRejected` (with line numbers) and nothing is written.
        """
        user = _check_user(user)
        commands = list(commands)
        with fewer_collections():  # a big import allocates millions of short-lived objects
            return self._execute(commands, user, progress, dry_run, extra)

    def _execute(self, commands: list[Command], user: str, progress: Callable[[int], None] | None,
                 dry_run: bool, extra: Callable[[int], list[Any]] | None) -> list[Result]:
        for attempt in range(MAX_ATTEMPTS):
            unit = UnitOfWork(self, user)
            errors: list[tuple[int | None, str]] = []
            for command in commands:
                try:
                    unit.apply(command)
                except PgfError as e:
                    if len(commands) == 1:
                        raise
                    errors.append((command.line, str(e)))
                if progress:
                    progress(1)
            if errors:
                raise BatchRejected(errors)
            if dry_run:
                return []
            try:
                unit.commit(extra(len(commands)) if extra else [])
            except (IntegrityError, OperationalError) as e:
                if attempt == MAX_ATTEMPTS - 1:
                    raise ConcurrencyError(
                        f"could not save after {MAX_ATTEMPTS} attempts because other users kept writing "
                        f"to the same patients ({type(e).__name__}); nothing was written, try again"
                    ) from None
                self.conflicts_retried += 1
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                if progress:
                    progress(-len(commands))
                continue
            return unit.results()
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ reading

    def patient(self, subject: str, version: int | None = None) -> Patient:
        subject = normalise_subject(subject)
        try:
            return self.repository.get(self.patient_id(subject), version=version, projector_func=_project)
        except AggregateNotFoundError:
            raise PatientNotFoundError(subject) from None

    def has_patient(self, subject: str) -> bool:
        return self.patient_id(subject) in self.repository

    def stream(self, subject: str) -> list[Any]:
        """Every stored event of a patient's stream, oldest first."""
        subject = normalise_subject(subject)
        events = list(self.events.get(self.patient_id(subject)))
        if not events:
            raise PatientNotFoundError(subject)
        return events

    # ------------------------------------------------------------------ users and roles

    def directory(self) -> UserDirectory | None:
        try:
            return self.repository.get(DIRECTORY_ID, projector_func=_project)
        except AggregateNotFoundError:
            return None

    def authorise(self, user: str, need: str, login: str | None = None) -> None:
        """Raise AccessDenied unless ``user`` holds a role that ``need`` allows (open stores allow all).

        In an access-controlled store the acting user must be the OS login (``login``): a name
        typed with --user cannot borrow someone else's role.
        """
        directory = self.directory()
        if directory is None or not directory.controlled:
            return
        if login is not None and user != login:
            raise AccessDenied(f"--user {user} is not your login ({login}); this store checks roles, so you act as yourself")
        allowed = PERMISSIONS[need]
        if not directory.roles_of(user) & allowed:
            held = ", ".join(sorted(directory.roles_of(user))) or "no role"
            raise AccessDenied(
                f"{user} ({held}) may not do this: it needs the {' or '.join(sorted(allowed))} role"
            )

    def change_role(self, action: str, user: str, role: str, *, by: str, reason: str | None = None) -> None:
        by = _check_user(by)
        for attempt in range(MAX_ATTEMPTS):
            directory = self.directory() or UserDirectory.open(by)
            getattr(directory, action)(user, role, by, reason)
            try:
                self.save(directory)
                return
            except IntegrityError:
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise ConcurrencyError("could not save the role change; try again")

    def subjects(self) -> list[str]:
        """Every registered subject code, in registration order (read from the notification log)."""
        topic = _topic(Patient.Registered)
        out: list[str] = []
        start = 1
        while True:
            batch = self.recorder.select_notifications(start=start, limit=1000, topics=[topic])
            out.extend(self.mapper.to_domain_event(n).subject for n in batch)
            if len(batch) < 1000:
                return out
            start = batch[-1].id + 1


class UnitOfWork:
    """Aggregates loaded once, changed by many commands, saved together."""

    def __init__(self, app: TrialConduct, user: str):
        self.app = app
        self.user = user
        self.now = app.clock()
        self.patients: dict[str, Patient] = {}
        self._results: list[tuple[Patient, int, str]] = []
        self._contexts: dict[str | None, Context] = {}

    def _context(self, source: str | None) -> Context:
        try:  # one Context per source text: a visit sheet repeats a handful of sources
            return self._contexts[source]
        except (KeyError, TypeError):
            pass
        if source is not None:
            source = vo.p.parse_text(source, "source", 200)
        ctx = Context(recorded_by=self.user, now=self.now, protocol=self.app.protocol, source=source)
        if isinstance(source, str) or source is None:
            self._contexts[source] = ctx
        return ctx

    def _load(self, subject: str) -> Patient:
        if subject not in self.patients:
            self.patients[subject] = self.app.patient(subject)
        return self.patients[subject]

    def apply(self, command: Command) -> None:
        ctx = self._context(command.source)
        if command.action == "record":
            subject = normalise_subject(command.subject)
            record = vo.build_record(command.kind, command.fields)
            if command.kind == "register":
                if subject in self.patients or self.app.has_patient(subject):
                    raise DuplicatePatientError(subject)
                patient = Patient.register(subject, record, ctx, id=self.app.patient_id(subject))  # type: ignore[arg-type]
                self.patients[subject] = patient
            else:
                patient = self._load(subject)
                getattr(patient, RECORD_COMMANDS[command.kind])(record, ctx)
            self._results.append((patient, patient.version, command.kind))
        elif command.action == "correct":
            subject, version = parse_ref(command.ref)
            patient = self._load(subject)
            patient.correct(version, dict(command.fields), command.reason or "", ctx)
            self._results.append((patient, patient.version, "correct"))
        elif command.action == "void":
            subject, version = parse_ref(command.ref)
            patient = self._load(subject)
            patient.void(version, command.reason or "", ctx)
            self._results.append((patient, patient.version, "void"))
        else:
            raise ValidationError(f"unknown action {command.action!r}")

    def commit(self, extra: Sequence[Any] = ()) -> None:
        """Save every changed patient, and any extra aggregate (an ImportBatch), in one transaction."""
        changed = [p for p in self.patients.values() if p.pending_events]
        self._events = {(p.subject, e.originator_version): e for p in changed for e in p.pending_events}
        if changed or extra:
            self.app.save(*changed, *extra)

    def results(self) -> list[Result]:
        out = []
        for patient, version, kind in self._results:
            event = self._events.get((patient.subject, version))
            changes = getattr(event, "changes", {}) if event is not None else {}
            out.append(Result(
                ref=make_ref(patient.subject, version), subject=patient.subject, version=version, kind=kind,
                recorded_at=getattr(event, "timestamp", None), recorded_by=self.user, changes=changes,
            ))
        return out


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event ``assert isinstance(event,
    CanMutateProtocol)``: a runtime Protocol check that costs more than applying the event."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _check_user(user: Any) -> str:
    try:
        return vo.p.parse_text(user, "user", 64)
    except ValidationError:
        raise ValidationError("--user (or PGF_USER) must name who is recording") from None


def _topic(cls: type) -> str:
    from eventsourcing.utils import get_topic  # noqa: PLC0415

    return get_topic(cls)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
