"""The audit page's exception report and deviation log, kept per patient and refreshed by what changed.

``pgf audit exceptions`` and ``pgf report deviations`` read every patient's stream and derive each
one (seconds at 5,000 patients). Both are per patient but for two cohort-wide steps: the
``new_user_at_site`` rows (a user's earliest entry at a site, over every patient) and the sort. So
:class:`AuditModel` keeps, per patient stream, its exception rows, its first entries per (user,
site) and its deviation rows, for the stream version they were computed at; a read asks the log
which streams have events past the last position seen (:func:`.replay.stream_heads`, one indexed
query), reads and recomputes only those, and merges (:func:`~pgf_events.audit.exceptions.merge_exceptions`,
:func:`~.deviations.deviation_report`) with the same functions as the commands, so the answer is
theirs (tested). Deviations depend on the day (:func:`latest_valid_date`): a new day recomputes them.

Now only: time travel (``as_of``) reads the log as the commands do.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import attrs

from pgf_events.audit.exceptions import KINDS, Merged, PatientExceptions, sort_rows
from pgf_events.domain.parsing import latest_valid_date
from pgf_events.domain.patient import Patient
from pgf_events.log import notifications
from pgf_events.projections import replay
from pgf_events.projections.deviations import patient_deviations
from pgf_events.projections.per_store import PerStore
from pgf_events.projections.store import ProjectionStore
from pgf_events.topics import topic_of


@attrs.define
class PatientAudit:
    subject: str
    version: int
    exceptions: tuple[list[dict[str, Any]], dict[tuple[str, str], Any]]  # rows (sorted), first entries
    counts: Counter[str]  # its exception rows by kind
    deviations: list[dict[str, Any]]
    day: date  # the day the deviations were judged on


class AuditModel:
    """Per-patient audit rows of one store's log (one per :class:`ProjectionStore`: :func:`model_of`)."""

    def __init__(self, store: ProjectionStore):
        self.store = store
        self.app = store.app
        self._lock = threading.Lock()
        self._position = 0
        self._day: date | None = None
        self._patients: dict[UUID, PatientAudit] = {}
        self._registered: list[tuple[str, str]] = []  # (subject, site) in registration order (app.subjects())
        self._registered_at = 0  # the position the registrations were read to
        self.streams_read = 0  # how many streams were read and recomputed (for the tests)

    def refresh(self, now: datetime) -> None:
        """Recompute the patients with events past the last position seen (every one on a new day)."""
        app, params = self.app, self.app.protocol
        head = app.recorder.max_notification_id() or 0
        day = latest_valid_date(now)
        after = 0 if day != self._day else self._position
        if after >= head and day == self._day:
            return
        for chunk in replay.chunks(replay.stream_heads(app, after, head)):
            for stream, events in replay.iter_patient_streams(app, chunk):
                subject = events[0].subject
                found = PatientExceptions(subject, params, {})  # as audit.exceptions.patient_exceptions
                rows = sort_rows(list(found.rows(events)))
                self._patients[stream.originator_id] = PatientAudit(
                    subject=subject, version=events[-1].originator_version, exceptions=(rows, found.first_seen),
                    counts=Counter(r["kind"] for r in rows),
                    deviations=patient_deviations(subject, events, params, now=now), day=day)
                self.streams_read += 1
        self._position, self._day = head, day
        self._read_registrations(head)

    def _read_registrations(self, head: int) -> None:
        """The registrations recorded since the last read, in log order (what ``app.subjects()`` reads)."""
        if head <= self._registered_at:
            return
        to_event = self.app.mapper.to_domain_event
        for n in notifications(self.app.recorder, start=self._registered_at + 1, stop=head,
                               topics=[topic_of(Patient.Registered)]):
            event = to_event(n)
            self._registered.append((event.subject, event.record.site))  # type: ignore[attr-defined]
        self._registered_at = head

    def _visible(self, in_scope: Callable[[str], bool]) -> list[PatientAudit]:
        by_subject = {p.subject: p for p in self._patients.values()}
        return [p for s, site in self._registered if in_scope(site) and (p := by_subject.get(s)) is not None]

    def tables(self, in_scope: Callable[[str], bool], now: datetime,
               kinds: tuple[str, ...] = KINDS) -> tuple[Merged, list[dict[str, Any]]]:
        """The exception rows (of ``kinds``; merged lazily, :class:`Merged`) and every deviation row of the
        patients the viewer sees (registered at a site ``in_scope``, in registration order as
        ``app.subjects()`` lists them), as of now."""
        with self._lock:
            self.refresh(now)
            visible = self._visible(in_scope)
            exceptions = Merged([p.exceptions for p in visible], kinds, [p.counts for p in visible])
            deviations = [row for p in visible for row in p.deviations]
        return exceptions, deviations


    def exceptions_as_of(self, in_scope: Callable[[str], bool], now: datetime, as_of: datetime,
                         kinds: tuple[str, ...] = KINDS) -> Merged:
        """``exception_rows(app, as_of, kinds)`` from the kept rows: a row is computed from its event and
        the events before it in its stream, and an entry's first time is the earliest, so what was
        known as of a time is the rows and first entries recorded by then."""
        with self._lock:
            self.refresh(now)
            found = []
            for p in self._visible(in_scope):
                rows, first = p.exceptions
                upto = bisect_right(rows, as_of, key=lambda r: r["recorded_at"])
                found.append((rows[:upto], {k: v for k, v in first.items() if v[0] <= as_of}))
            return Merged(found, kinds)


model_of: PerStore[AuditModel] = PerStore(AuditModel)  # the one audit model of a store in this process
