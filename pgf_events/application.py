"""TrialConduct: the application service every user goes through (CLI, import, demo, tests).

One imperative entry point per use case. Every write goes through a :class:`UnitOfWork`: the
commands are checked against the aggregates as the batch has changed them, then all new events are
saved in one transaction (atomic across patients). A concurrent writer to the same patient makes
the save fail on the stream's version; the whole unit is then re-run on fresh state, so no event
is ever lost or silently dropped.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, OperationalError, ProgrammingError, Transcoder

from pgf_events import bound_cipher, transcodings
from pgf_events.domain.errors import (
    AccessDenied,
    ConcurrencyError,
    PatientNotFoundError,
    PgfError,
    StoreError,
)
from pgf_events.gc_tuning import fewer_collections
from pgf_events.guards import project
from pgf_events.log import notifications
from pgf_events.mapper import FastMapper
from pgf_events.retry import MAX_ATTEMPTS, retry
from pgf_events.signing import SigningUseCases
from pgf_events.site_scope import SiteScope
from pgf_events.store import CIPHER_ENV, StoreConfig, is_locked, locked_message, parse_url, prepare
from pgf_events.user_roles import UserRoles

if TYPE_CHECKING:
    from pgf_events.commands import BatchRejected, Command, Result, UnitOfWork, normalise_subject, parse_ref
    from pgf_events.domain.imports import ImportBatch
    from pgf_events.domain.patient import Patient
    from pgf_events.protocol import Protocol

PATIENTS_KEPT = 2_000  # patients a long-running process keeps (patient_cache); emptied when full

# Re-exported: callers build commands and read results through the application module. The patient
# domain they need is imported on first use (``__getattr__``), as the methods below import it: a
# command that decodes no patient (``pgf audit verify``) never loads it (tests/store/test_lazy_domain.py).
__all__ = ["BatchRejected", "Command", "Result", "TrialConduct", "UnitOfWork", "normalise_subject", "parse_ref"]
_FROM_COMMANDS = frozenset(__all__) - {"TrialConduct"}


def __getattr__(name: str) -> Any:
    if name in _FROM_COMMANDS:
        from pgf_events import commands  # noqa: PLC0415

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _patient_id() -> Callable[[str, bytes | None], UUID]:
    """:func:`pgf_events.domain.patient.patient_id`, imported once on first use (called for every command)."""
    from pgf_events.domain.patient import patient_id  # noqa: PLC0415

    return patient_id


class TrialConduct(UserRoles, SigningUseCases, SiteScope, Application[Any]):
    name = "pgf"
    is_snapshotting_enabled = False

    def __init__(self, store: StoreConfig, protocol: Protocol | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.store = store
        self._protocol = protocol  # None: the trial's (DEFAULT_PROTOCOL), imported when first needed
        self.clock = clock or (lambda: datetime.now(UTC))
        self.conflicts_retried = 0  # saves re-run because another writer got there first
        self._session_user: str | None = None
        self.site_scope: frozenset[str] | None = None  # set by authorise: a site-scoped user's sites
        self.scoped_user = ""
        # The derived status by (subject, version), kept by a long-running process for the record echo
        # (pgf_events.projections.changes); None: not kept.
        self.status_memo: dict[tuple[str, int], Any] | None = None
        # The folded patients the read models' catch-ups share, kept by a long-running process
        # (pgf_events.projections.folds.FoldCache); None: each catch-up keeps its own.
        self.projection_folds: Any = None
        # The patients a long-running process wrote, each with its versions' recorded times, by stream id:
        # taken by the next unit of work that writes to the patient and brought up to date from the store
        # first (what other processes wrote since), given back only after that unit's save succeeded.
        # None: not kept (a one-command process loads each patient from the store).
        self.patient_cache: dict[UUID, tuple[Patient, dict[int, datetime]]] | None = None
        # Their edit checks' facts (pgf_events.domain.rules.editchecks.EditFacts) at the version each was
        # saved at by this process, by stream id: a new record is added to them (facts_after). None: not kept.
        self.edit_facts: dict[UUID, tuple[int, Any]] | None = None
        prepare(store)
        self._id_secret = base64.b64decode(store.cipher_key) if store.cipher_key else None
        try:
            super().__init__(env=store.env)
        except OperationalError as e:
            raise StoreError(f"cannot open the store {store.display}: {e}") from None
        except ProgrammingError as e:
            if "permission denied" not in str(e):
                raise
            raise AccessDenied(f"your database login may not open the store {store.display}: it holds none of the "
                               "store's roles (an admin gives them with 'pgf users grant')") from None
        # A PostgreSQL store made just now: its owner must still create the read models' tables and
        # grant access (least-privilege logins cannot CREATE). That belongs to the outer layers that
        # own those tables: see :func:`pgf_events.projections.provision.finish_if_created`.
        self.created_now = bool(getattr(self.recorder, "created_now", False)) and store.backend == "postgresql"
        self._check_cipher()

    def _check_cipher(self) -> None:
        """Refuse, with a clear error, a store encrypted with another key (or with none)."""
        first = self.recorder.select_notifications(start=1, limit=1)
        if not first:
            return
        try:
            # the payload opens (and its topic is known), its values and class left unread: no domain import
            if isinstance(self.mapper, FastMapper):
                self.mapper.opens(first[0])
            else:
                self.mapper.to_domain_event(first[0])
        except StoreError as e:  # readable, but holds a topic this version does not know: say that
            if not isinstance(e, bound_cipher.MisplacedCiphertext):
                raise
            self._refuse_key(first[0].state)  # a bound payload that does not open: the wrong key
        except Exception:  # noqa: BLE001 - any failure to decode the first event means the wrong key
            self._refuse_key(first[0].state)

    def _refuse_key(self, state: bytes) -> None:
        """The first event does not open: say whether the key is missing, wrong, or not needed."""
        try:
            json.loads(state)
            plaintext = True
        except ValueError:
            plaintext = False
        if self.store.cipher_key and plaintext:
            raise StoreError(f"the store {self.store.display} is not encrypted; unset {CIPHER_ENV}") from None
        if self.store.cipher_key:
            raise StoreError(f"{CIPHER_ENV} does not open the store {self.store.display} (wrong key)") from None
        raise StoreError(f"the store {self.store.display} is encrypted; set {CIPHER_ENV} to its key") from None

    @property
    def protocol(self) -> Protocol:
        """The protocol the rules are judged under (the trial's unless given)."""
        if self._protocol is None:
            from pgf_events.protocol import DEFAULT_PROTOCOL  # noqa: PLC0415 - not every command judges a rule

            self._protocol = DEFAULT_PROTOCOL
        return self._protocol

    @protocol.setter
    def protocol(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def patient_id(self, subject: str) -> UUID:
        return _patient_id()(subject, self._id_secret)

    @classmethod
    def open(cls, url: str | None = None, protocol: Protocol | None = None) -> TrialConduct:
        return cls(parse_url(url), protocol)

    def construct_mapper(self) -> Mapper[Any]:
        base = super().construct_mapper()
        return FastMapper(base.transcoder, compressor=base.compressor, cipher=base.cipher)

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON format, read and written with orjson (see :mod:`pgf_events.transcodings`)."""
        transcoder = transcodings.FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)  # type: ignore[arg-type]
        transcodings.register_on_first_use(transcoder)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ writing

    def record(self, kind: str, subject: str, fields: Mapping[str, Any], *, user: str,
               source: str | None = None, deviation: str | None = None, key: str | None = None) -> Result:
        from pgf_events.commands import Command  # noqa: PLC0415

        return self.execute([Command("record", subject=subject, kind=kind, fields=fields, source=source,
                                     deviation=deviation, key=key)], user=user)[0]

    def correct(self, ref: str, changes: Mapping[str, Any], reason: str, *, user: str,
                source: str | None = None, deviation: str | None = None, answers: str | None = None) -> Result:
        from pgf_events.commands import Command  # noqa: PLC0415

        return self.execute([Command("correct", ref=ref, fields=changes, reason=reason, source=source,
                                     deviation=deviation, answers=answers)], user=user)[0]

    def void(self, ref: str, reason: str, *, user: str, source: str | None = None,
             deviation: str | None = None, answers: str | None = None) -> Result:
        from pgf_events.commands import Command  # noqa: PLC0415

        return self.execute([Command("void", ref=ref, reason=reason, source=source, deviation=deviation,
                                     answers=answers)], user=user)[0]

    def import_batch(self, commands: Sequence[Command], *, digest: str, file_name: str, user: str,
                     progress: Callable[[int], None] | None = None,
                     legacy_digest: str | None = None) -> list[Result] | ImportBatch:
        """Execute an imported file once: returns its results, or the earlier ImportBatch if already done.

        ``digest`` identifies the file by meaning (``cli.import_digest.command_digest``); ``legacy_digest`` (the
        SHA-256 of its bytes) finds a batch imported before batches were keyed by meaning.
        """
        from pgf_events.domain.imports import ImportBatch  # noqa: PLC0415

        def already() -> ImportBatch | None:
            return self.imported(digest, legacy_digest)

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

    def imported(self, *digests: str | None) -> ImportBatch | None:
        """The ImportBatch of a file already imported under one of ``digests``, or None."""
        from pgf_events.domain.imports import import_id  # noqa: PLC0415

        for d in digests:
            if d is None:
                continue
            try:
                return self.repository.get(import_id(d), projector_func=project)  # type: ignore[no-any-return]
            except AggregateNotFoundError:
                pass
        return None

    def execute(self, commands: Sequence[Command], *, user: str,
                progress: Callable[[int], None] | None = None, dry_run: bool = False,
                extra: Callable[[int], list[Any]] | None = None) -> list[Result]:
        """Check every command, then store all their events at once, or nothing.

        A single failing command raises its own error; in a batch of several, every failure is
        collected into one :class:`BatchRejected` (with line numbers) and nothing is written.
        """
        user = self._check_actor(user)
        commands = list(commands)
        with fewer_collections():  # a big import allocates millions of short-lived objects
            return self._execute(commands, user, progress, dry_run, extra)

    def _execute(self, commands: list[Command], user: str, progress: Callable[[int], None] | None,
                 dry_run: bool, extra: Callable[[int], list[Any]] | None) -> list[Result]:
        from pgf_events.commands import BatchRejected, UnitOfWork  # noqa: PLC0415

        def attempt() -> list[Result]:
            unit = UnitOfWork(self, user, defer_changes=len(commands) > 1)
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
            errors.extend(unit.settle())
            if errors:
                raise BatchRejected(errors)
            if dry_run:
                return []
            try:
                unit.commit(extra(len(commands)) if extra else [])
            except OperationalError as e:
                if is_locked(e):  # waited --wait seconds for another process's lock: say so, do not retry
                    raise StoreError(locked_message(self.store)) from None
                raise
            return unit.results()

        def retried() -> None:
            self.conflicts_retried += 1
            if progress:
                progress(-len(commands))

        return retry(attempt, on=(IntegrityError, OperationalError), retried=retried, failure=lambda e: (
            f"could not save after {MAX_ATTEMPTS} attempts because other users kept writing "
            f"to the same patients ({type(e).__name__}); nothing was written, try again"))

    def save_events(self, events: Sequence[Any]) -> None:
        """Store ``events`` in one transaction, in the order given (the library's ``save`` takes
        aggregates and stores each one's events together)."""
        events = list(events)
        with self.site_claims(events):  # an encrypted PostgreSQL store learns new patients' sites
            self.events.put(events)

    # ------------------------------------------------------------------ reading

    def patient(self, subject: str, version: int | None = None) -> Patient:
        from pgf_events.commands import normalise_subject  # noqa: PLC0415

        subject = normalise_subject(subject)
        try:
            patient = self.repository.get(self.patient_id(subject), version=version, projector_func=project)
        except AggregateNotFoundError:
            self.check_hidden(subject)
            raise PatientNotFoundError(subject) from None
        self.check_site(subject, patient.registration.site)
        return patient  # type: ignore[no-any-return]

    def patient_to_write(self, subject: str) -> tuple[Patient, dict[int, datetime]]:
        """The patient a unit of work changes, and its versions' recorded times: the copy a long-running
        process kept (``patient_cache``), brought up to date with the events stored since (the version
        check: the save is refused if another process writes in between), else loaded from the store.
        A kept copy is taken out of the cache: only a unit's successful save gives it back."""
        from pgf_events.commands import normalise_subject  # noqa: PLC0415

        subject = normalise_subject(subject)
        uuid = self.patient_id(subject)
        kept = self.patient_cache.pop(uuid, None) if self.patient_cache is not None else None
        patient: Any
        patient, recorded = kept if kept is not None else (None, {})
        event: Any
        for event in self.events.get(uuid, gt=patient.version if patient is not None else None):
            patient = event.mutate(patient)
            recorded[event.originator_version] = event.timestamp
        if patient is None:
            self.check_hidden(subject)
            raise PatientNotFoundError(subject)
        self.check_site(subject, patient.registration.site)
        return patient, recorded

    def keep_patients(self, saved: Iterable[tuple[Patient, dict[int, datetime]]]) -> None:
        """Give the patients of a successful save back to ``patient_cache`` (their events are stored)."""
        cache = self.patient_cache
        if cache is None:
            return
        for patient, recorded in saved:
            for event in patient.collect_events():
                recorded[event.originator_version] = event.timestamp
            if len(cache) >= PATIENTS_KEPT:
                cache.clear()
            cache[patient.id] = (patient, recorded)

    def kept_patient(self, subject: str, version: int) -> tuple[Patient, dict[int, datetime]] | None:
        """The kept patient and its recorded times if it is at ``version`` (nothing stored since), else None."""
        if self.patient_cache is None:
            return None
        from pgf_events.commands import normalise_subject  # noqa: PLC0415

        kept = self.patient_cache.get(self.patient_id(normalise_subject(subject)))
        if kept is None or kept[0].version != version:
            return None
        return kept

    def has_patient(self, subject: str) -> bool:
        return self.patient_id(subject) in self.repository

    def stream(self, subject: str) -> list[Any]:
        """Every stored event of a patient's stream, oldest first."""
        from pgf_events.commands import normalise_subject  # noqa: PLC0415

        subject = normalise_subject(subject)
        events = list(self.events.get(self.patient_id(subject)))
        if not events:
            self.check_hidden(subject)
            raise PatientNotFoundError(subject)
        if self.site_scope is not None:
            self.check_site(subject, events[0].record.site)  # type: ignore[attr-defined]
        return events

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        with self.site_claims([e for obj in objs for e in getattr(obj, "pending_events", ())]):
            return super().save(*objs, **kwargs)

    def check_clock(self, times: Sequence[datetime]) -> None:
        """Embedded SQLite: the recorder refuses, under the write lock, a recorded time earlier than the
        last event's (a clock set back, or ``faketime``). On PostgreSQL the database stamps the time
        itself and refuses the same."""
        if hasattr(self.recorder, "pending_times"):
            self.recorder.pending_times = (min(times), max(times)) if times else None

    def subjects(self) -> list[str]:
        """Every registered subject code the acting user may see (``site_scope``), in registration order
        (read from the notification log)."""
        from pgf_events.domain.patient import Patient  # noqa: PLC0415
        from pgf_events.topics import topic_of  # noqa: PLC0415

        to_event = self.mapper.to_domain_event
        registered = notifications(self.recorder, topics=[topic_of(Patient.Registered)])
        events = [to_event(n) for n in registered]
        return [e.subject for e in events if self.in_scope(e.record.site)]  # type: ignore[attr-defined]
