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
import weakref
from datetime import date, datetime
from typing import Any
from uuid import UUID

import attrs

from pgf_events.audit.exceptions import KINDS, Found, PatientExceptions, merge_exceptions
from pgf_events.domain.parsing import latest_valid_date
from pgf_events.projections import replay
from pgf_events.projections.deviations import patient_deviations
from pgf_events.projections.store import ProjectionStore


@attrs.define
class PatientAudit:
    subject: str
    version: int
    exceptions: Found
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
                rows = list(found.rows(events))
                self._patients[stream.originator_id] = PatientAudit(
                    subject=subject, version=events[-1].originator_version, exceptions=(rows, found.first_seen),
                    deviations=patient_deviations(subject, events, params, now=now), day=day)
                self.streams_read += 1
        self._position, self._day = head, day

    def _visible(self, subjects: list[str]) -> list[PatientAudit]:
        by_subject = {p.subject: p for p in self._patients.values()}
        return [p for s in subjects if (p := by_subject.get(s)) is not None]

    def tables(self, subjects: list[str], now: datetime,
               kinds: tuple[str, ...] = KINDS) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The exception rows (of ``kinds``) and every deviation row of the patients ``subjects`` (in that
        order: ``app.subjects()``, the viewer's patients in the commands' order), as of now."""
        with self._lock:
            self.refresh(now)
            visible = self._visible(subjects)
            exceptions = merge_exceptions([p.exceptions for p in visible], kinds)
            deviations = [row for p in visible for row in p.deviations]
        return exceptions, deviations


_MODELS: weakref.WeakKeyDictionary[ProjectionStore, AuditModel] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def model_of(store: ProjectionStore) -> AuditModel:
    """The one audit model of ``store`` in this process (made on first use; goes with the store)."""
    with _REGISTRY_LOCK:
        found = _MODELS.get(store)
        if found is None:
            found = _MODELS[store] = AuditModel(store)
        return found
