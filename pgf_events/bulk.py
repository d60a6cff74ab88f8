"""The bulk path of ``pgf import``: the same checks as the unit of work, written as it goes, memory bounded.

:class:`BulkUnit` is a :class:`UnitOfWork` that, in one transaction holding the store's write lock
from the start (``recorder.bulk()``), checks a file's commands in order and writes their events in
chunks as soon as they are final, instead of keeping every patient's aggregate and every event
until the end. For a record of a history-free kind (a lab result, vital signs, an AE, ...; see
:mod:`pgf_events.domain.facts`) of a patient that no other kind of line of the file touches, it
keeps only the patient's facts: checked by the aggregate's own rule functions, the event is the
one ``Patient.record`` triggers. Every other line goes through the aggregate exactly as in
:class:`UnitOfWork` (those patients are held until the end, as corrections and voids are checked
together). Such a patient is held only until the file's last line that touches it (the first pass
knows which: :class:`pgf_events.bulk_plan.Holding`): there its deferred changes are settled and its edit checks run, and
the aggregate is let go, so memory stays bounded by the patients a file interleaves, not by the
file. Events are stored in command order, automatic queries, the batch and the keys last, as
:meth:`UnitOfWork.commit` stores them: the same accepted lines, the same errors, the same stored
bytes and chain (``tests/app/test_bulk_property.py``). A failing line stops the writing (the rest
is still checked, so every error is reported) and the transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError, OperationalError

from pgf_events.bulk_plan import subject_of
from pgf_events.commands import (
    BatchRejected,
    Command,
    Result,
    UnitOfWork,
    _time_fields,
    _typed_times,
    normalise_subject,
)
from pgf_events.domain import kinds
from pgf_events.domain.errors import DomainError, PgfError
from pgf_events.domain.facts import PatientFacts, history_free
from pgf_events.domain.imports import ImportBatch
from pgf_events.domain.patient import Patient, make_ref
from pgf_events.gc_tuning import fewer_collections, roomy_heap
from pgf_events.retry import MAX_ATTEMPTS, retry

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

CHUNK = 2000  # events written per insert: large enough to amortise a statement, small enough to stream


class _Let:
    """What :meth:`BulkUnit.finish` needs of a patient let go after its last line: its edit checks
    (run when it was let go, on the settled aggregate) and whether it changed."""

    __slots__ = ("_checks", "changed", "subject")

    def __init__(self, subject: str, changed: bool, checks: list[Any]):
        self.subject, self.changed, self._checks = subject, changed, checks

    def edit_checks(self, protocol: Any) -> list[Any]:
        return self._checks


class _Stored:
    """A history-free record's event as it is stored (its time kept for the clock check)."""

    __slots__ = ("stored", "timestamp")

    def __init__(self, timestamp: Any, stored: Any):
        self.timestamp, self.stored = timestamp, stored


class BulkUnit(UnitOfWork):
    """A unit of work that streams: see the module's docstring."""

    def __init__(self, app: TrialConduct, user: str, *, whole: Mapping[str, int], defer_changes: bool,
                 insert: Callable[[Sequence[Any]], None] | None, keep_refs: bool = True):
        super().__init__(app, user, defer_changes=defer_changes)
        # The patients some command needs whole, and the ordinal of the last command touching each
        # (Holding.whole); a caller that streams may fill it as it goes, before a patient's first command.
        self.whole = whole
        self.fed = 0  # commands fed so far
        self.let: dict[str, _Let] = {}  # whole patients done and let go
        self.settled: dict[str, str | None] = {}  # their deferred changes' outcome (an error, or None)
        self.insert = insert  # writes stored events in the open transaction; None: check only
        self.facts: dict[str, PatientFacts] = {}
        self.seen: dict[str, None] = {}  # subjects in the order the unit first wrote to them
        self.queue: list[Any] = []  # events made and not yet written, in command order
        self.errors: list[tuple[int | None, str]] = []
        self.refs: list[str] | None = [] if keep_refs else None
        self._codes: dict[str, str] = {}  # subject codes as typed -> normalised (history-free records)
        self._kinds: dict[str, tuple[kinds.Kind, bool]] = {}
        self.count = 0
        self.first_ref = self.last_ref = ""
        # History-free records are stored from their fields without making their events (see _fast)
        # when the store neither encrypts nor compresses.
        mapper = app.mapper
        self._direct = (insert is not None and hasattr(mapper, "stored_fields")
                        and not mapper.cipher and not mapper.compressor)

    # ------------------------------------------------------------------ checking

    def feed(self, command: Command) -> None:
        """Apply one command; a failure is collected with its line, and writing stops."""
        self.fed += 1
        try:
            subject = self._fast(command) if self._is_fast(command) else self._whole(command)
        except PgfError as e:
            if not self.defer_changes:  # a file of one command: its own error, as execute() raises it
                raise
            self.errors.append((command.line, str(e)))
            subject = subject_of(command)
        else:
            if subject in self.patients or subject in self.facts:
                self.seen.setdefault(subject)
        if subject and self.whole.get(subject) == self.fed and subject in self.patients:
            self._let_go(subject)
        if len(self.queue) >= CHUNK:
            self.flush()

    def _let_go(self, subject: str) -> None:
        """No later command touches this patient: settle its deferred changes now (the outcome is
        reported in :meth:`settle`'s order), run its edit checks, and keep only what finish needs."""
        patient = self.patients.pop(subject)
        if subject in self._deferred:
            try:
                patient.settle(self._context(None))
                self.settled[subject] = None
            except DomainError as e:
                self.settled[subject] = str(e)
        if self.insert is None or self.errors or self.settled.get(subject):
            checks: list[Any] = []  # nothing will be written: no queries to raise
        else:
            from pgf_events.domain.rules.editchecks import edit_checks  # noqa: PLC0415

            checks = edit_checks(patient, self.app.protocol)
        self.let[subject] = _Let(subject, bool(patient.pending_events), checks)

    def settle(self) -> list[tuple[int | None, str]]:
        """As :meth:`UnitOfWork.settle`, the patients let go early in their place in the order."""
        errors: list[tuple[int | None, str]] = []
        for subject, line in self._deferred.items():
            if subject in self.settled:
                error = self.settled[subject]
            else:
                try:
                    self.patients[subject].settle(self._context(None))
                    continue
                except DomainError as e:
                    error = str(e)
            if error is not None:
                errors.append((line, error))
        return errors

    def _is_fast(self, command: Command) -> bool:
        return (command.action == "record" and command.key is None and history_free(command.kind)
                and command.kind in kinds.KINDS and (not self.whole or subject_of(command) not in self.whole))

    def _fast(self, command: Command) -> str:
        if not self._lock_checked:
            from pgf_events.guards import check_not_locked  # noqa: PLC0415

            check_not_locked(self.app)
            self._lock_checked = True
        ctx = self._context(command.source)
        code = command.subject
        subject = self._codes.get(code) if type(code) is str else None
        if subject is None:
            subject = normalise_subject(code)
            self._codes[code] = subject
        spec, timed = self._kind(command.kind)
        facts = self.facts.get(subject)
        fields = command.fields
        if timed and _typed_times(spec.record, fields):
            fields = self._site_local(facts or self._facts(subject), spec.record, fields)  # type: ignore[arg-type]
        record = spec.record.from_input(fields)
        if facts is None:
            facts = self._facts(subject)
        if self._direct:  # the event's stored row, made from its fields (the same bytes)
            version, made = facts.recorded(spec.event, record, ctx, command.deviation)
            self.queue.append(_Stored(made["timestamp"], self.app.mapper.stored_fields(  # type: ignore[attr-defined]
                spec.event, facts.id, version, made)))
        else:
            event = facts.record(spec.event, record, ctx, command.deviation)
            self.queue.append(event)
            version = event.originator_version
        self._result(make_ref(subject, version))
        return subject

    def _kind(self, name: str) -> tuple[kinds.Kind, bool]:
        """A kind, and whether it has date-time fields (then a time typed without an offset is the site's)."""
        try:
            return self._kinds[name]
        except KeyError:
            spec = kinds.kind(name)
            record: type = spec.record
            found = self._kinds[name] = (spec, bool(_time_fields(record)))
            return found

    def _facts(self, subject: str) -> PatientFacts:
        facts = self.facts.get(subject)
        if facts is None:
            facts = self.facts[subject] = PatientFacts(self._load(subject))
            del self.patients[subject]  # only its facts are kept
        return facts

    def _whole(self, command: Command) -> str:
        if subject_of(command) in self.let:  # the plan said no later command touches it
            raise AssertionError(f"{subject_of(command)} was let go before a command touching it (a wrong Holding)")
        self.apply(command)
        self.queue += self._order
        self._order.clear()
        for item in self._results:
            self._result(item.ref if isinstance(item, Result) else make_ref(item[0].subject, item[1]))
        self._results.clear()
        return subject_of(command)

    def _result(self, ref: str) -> None:
        self.count += 1
        self.last_ref = ref
        if self.count == 1:
            self.first_ref = ref
        if self.refs is not None:
            self.refs.append(ref)

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write the events made so far that are final (a deferred change that acknowledges a
        deviation waits for :meth:`settle`, and so does everything after it)."""
        if self.insert is None or self.errors:
            self.queue.clear()  # nothing will be written (checking only, or a line failed)
            return
        end = next((n for n, e in enumerate(self.queue) if _awaits_settle(e)), len(self.queue))
        if end:
            self._write(self.queue[:end])
            del self.queue[:end]

    def _write(self, events: Sequence[Any]) -> None:
        assert self.insert is not None
        to_stored = self.app.mapper.to_stored_event
        self.app.check_clock([e.timestamp for e in events])
        try:
            with self.app.site_claims(events):
                self.insert([e.stored if type(e) is _Stored else to_stored(e) for e in events])
        finally:
            self.app.check_clock([])

    def finish(self, extra: Sequence[Any] = ()) -> None:
        """Settle the deferred changes, raise the automatic queries, write the rest; or raise BatchRejected."""
        self.errors.extend(self.settle())
        if self.errors:
            raise BatchRejected(self.errors)
        if self.insert is None:
            return
        from pgf_events.guards import auto_queries  # noqa: PLC0415

        changed: list[Any] = []
        for subject in self.seen:
            holder: Any = self.patients.get(subject) or self.facts.get(subject) or self.let.get(subject)
            if holder is not None and (holder.changed if isinstance(holder, (PatientFacts, _Let))
                                       else holder.pending_events):
                changed.append(holder)
        auto_queries(self.app, changed, self.reviews, self.now)
        reviews = [r for r in self.reviews.values() if r is not None and r.pending_events]
        keys = [k for k in self._keys.values() if k.pending_events]
        last = [*self.queue, *(e for a in (*reviews, *extra, *keys)
                               for e in a.pending_events)]
        self.queue.clear()
        if last:
            self._write(last)


class _Unwritten(Exception):  # noqa: N818 - not an error: the pass ended without writing, and why
    def __init__(self, outcome: Any):
        self.outcome = outcome


def import_stream(app: TrialConduct, commands: Callable[[], Iterable[Command]], *, total: int, whole: Mapping[str, int],
                  digest: str | Callable[[], str | None], file_name: str, user: str,
                  progress: Callable[[int], None] | None = None, legacy_digest: str | None = None,
                  dry_run: bool = False, keep_refs: bool = True) -> Any:
    """``pgf import`` on the bulk path: ``commands()`` yields the file's commands (called again for
    each attempt, or if the store cannot take a bulk write: then saved by ``app.import_batch``).

    Returns the finished :class:`BulkUnit`, the earlier ImportBatch if the file was already
    imported, or (in-memory stores) the results; raises BatchRejected with every failure. With
    ``dry_run`` it only checks (after parse errors every line is still checked).

    ``digest`` may be known only once the commands were read (a callable, read after the last one; a
    file read once): then the batches already imported are looked up at the end of the pass, in the
    write transaction, before the batch is written (a file already imported: rolled back, its earlier
    batch returned), and a digest of None (some line failed to parse) rolls back and returns None.
    """
    user = app._check_actor(user)
    if not dry_run and isinstance(digest, str):
        done = app.imported(digest, legacy_digest)
        if done is not None:
            return done

    def settled_digest() -> str:
        return digest if isinstance(digest, str) else digest() or ""

    def batch(count: int) -> list[Any]:
        return [ImportBatch.record(settled_digest(), file_name, count, count, user)]

    def last_check() -> None:  # the digest known at the end of the pass: the file already imported?
        if dry_run or isinstance(digest, str):
            return
        known = digest()
        if known is None:
            raise _Unwritten(None)
        done = app.imported(known, legacy_digest)
        if done is not None:
            raise _Unwritten(done)

    def attempt() -> Any:
        with fewer_collections():
            return run(app, commands(), user=user, whole=whole, total=total, extra=batch, dry_run=dry_run,
                       progress=progress, keep_refs=keep_refs, last_check=last_check)

    def retried() -> None:
        app.conflicts_retried += 1
        if progress:
            progress(-total)

    # The write lock is taken first (recorder.bulk), so only a writer that does not take it (an older
    # pgf on PostgreSQL) can change a patient the import read: then it starts again, as execute() does.
    try:
        unit = retry(attempt, on=(IntegrityError, OperationalError), retried=retried, failure=lambda e: (
            f"could not save after {MAX_ATTEMPTS} attempts because other users kept writing "
            f"to the same patients ({type(e).__name__}); nothing was written, try again"))
    except _Unwritten as unwritten:
        return unwritten.outcome
    if unit is None:
        listed = list(commands())
        try:
            last_check()
        except _Unwritten as unwritten:
            return unwritten.outcome
        return app.import_batch(listed, digest=settled_digest(), file_name=file_name, user=user,
                                progress=progress, legacy_digest=legacy_digest)
    return unit


def run(app: TrialConduct, commands: Iterable[Command], *, user: str, whole: Mapping[str, int], total: int,
        extra: Callable[[int], list[Any]] | None = None, dry_run: bool = False,
        progress: Callable[[int], None] | None = None, keep_refs: bool = True,
        defer_changes: bool | None = None, last_check: Callable[[], None] | None = None) -> BulkUnit | None:
    """Check and write ``commands`` (an iterable read once) in one transaction; returns the finished
    unit, or None when the store cannot take a bulk write (an in-memory store: use ``execute``).
    Changes are checked as a unit per patient (settled) when ``total > 1``, or as ``defer_changes`` says.
    ``last_check`` runs after the last command, in the transaction: what it raises rolls everything back."""
    bulk = getattr(app.recorder, "bulk", None)  # the in-memory recorder has none
    if bulk is None and not dry_run:
        return None
    roomy_heap()  # before a writer process is forked: it inherits the setting
    with bulk() if bulk is not None else nullcontext() as insert:
        if insert is None and not dry_run:
            return None
        unit = BulkUnit(app, user, whole=whole, defer_changes=total > 1 if defer_changes is None else defer_changes,
                        insert=None if dry_run else insert, keep_refs=keep_refs)
        for command in commands:
            unit.feed(command)
            if progress:
                progress(1)
        if last_check is not None:
            last_check()
        unit.finish(extra(total) if extra and not dry_run else ())
        return unit


def _awaits_settle(event: Any) -> bool:
    return isinstance(event, (Patient.Corrected, Patient.Voided)) and event.__dict__.get("acknowledged") == []
