"""The audit page's exception report and deviation log, from the audit read model kept per patient.

``pgf audit exceptions`` and ``pgf report deviations`` read every patient's stream and derive each
one (seconds at 5,000 patients). Both are per patient but for two cohort-wide steps: the
``new_user_at_site`` rows (a user's earliest entry at a site, over every patient) and the sort. So
the per-patient part is a stored read model, ``pgf_view_audit`` (:mod:`.finding_rows`: per patient
stream its exception rows, its first entries per (user, site) and its deviation rows), kept like the
worklist's (:class:`~pgf_events.projections.model_store.ModelKeeper`: caught up from the log,
rebuilt in the projections' one pass, checked by ``pgf projections verify``; a store made by an
older version builds it once on first use). :class:`AuditModel` keeps its rows in memory, re-reads
only the rows past the last position seen, and merges (:func:`~pgf_events.audit.exceptions.merge_exceptions`,
:func:`~.deviations.deviation_report`) with the same functions as the commands, so the answer is
theirs (tested). Where the table cannot be kept (a read-only copy) the rows are derived from the
log the same way, per stream changed since the last look.

Time travel (``as_of``): :meth:`AuditModel.findings_as_of`, the travel treatment of
:mod:`pgf_events.projections.travel` applied to these rows. Each row keeps the earliest and latest
recorded time of its stream's events; as of a time a patient stream is

- *not yet there* (nothing recorded by then): left out;
- *whole* (every event recorded by then): its rows are the answer, exceptions and deviations alike.
  A deviation row kept was judged as of the stream's last recorded time, and
  ``patient_deviations(..., now=as_of)`` judges it as of ``as_of``: the day judged on enters only as
  the latest clinical date not in the future, which only makes ``future_date`` findings, and those
  are impossibilities, which the log leaves out; so the two are the same rows;
- *straddling*: its exception rows and first entries recorded by then are kept (a row is computed
  from its event and the events before it), and its deviations are derived from its events recorded
  by then, read from the log (:func:`~pgf_events.audit.source.patient_streams`, as the commands read
  every stream).

So the first look at the audit page as of a time costs the patients active around then, not the
cohort. ``tests/projections/test_travel.py`` compares it with reading every stream as of then, at
many times, with corrections and voids recorded long after the events they change.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from pgf_events.audit.exceptions import KINDS, Found, Merged
from pgf_events.audit.finding_rows import AUDIT, ExceptionRows, decode
from pgf_events.audit.finding_rows import rows as finding_rows
from pgf_events.audit.source import patient_streams
from pgf_events.domain.patient import Patient
from pgf_events.gc_tuning import fewer_collections
from pgf_events.log import notifications
from pgf_events.projections import replay
from pgf_events.projections.derive import fold
from pgf_events.projections.deviations import patient_deviations
from pgf_events.projections.model_store import KeptRows, ModelKeeper
from pgf_events.projections.per_store import PerStore
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.stream_models import Stream
from pgf_events.topics import topic_of


@attrs.define
class PatientAudit:
    subject: str
    exceptions: tuple[ExceptionRows, dict[tuple[str, str], Any]]  # rows (sorted), first entries
    counts: Counter[str]  # its exception rows by kind
    deviations: list[dict[str, Any]]
    span: tuple[datetime, datetime] | None  # the earliest and latest recorded time of its events (None: unknown)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> PatientAudit:
        """The findings of an audit read-model row (:mod:`.finding_rows`)."""
        exceptions, deviations = decode(doc)
        recorded = doc.get("recorded")
        span = (datetime.fromisoformat(recorded["earliest"]), datetime.fromisoformat(recorded["latest"])) \
            if recorded is not None else None
        return cls(doc["subject"], exceptions, exceptions[0].kinds(), deviations, span)


class AuditModel:
    """Per-patient audit rows of one store's log (one per :class:`ProjectionStore`: :func:`model_of`)."""

    def __init__(self, store: ProjectionStore):
        self.store = store
        self.app = store.app
        self.keeper = ModelKeeper(store, AUDIT)
        self._kept = KeptRows(self.keeper)
        self._lock = threading.Lock()
        self._position = 0  # without the table: the log position derived to
        self._patients: dict[Any, tuple[int, PatientAudit]] = {}  # row (or stream) key -> (version, findings)
        self._registered: list[tuple[str, str]] = []  # (subject, site) in registration order (app.subjects())
        self._registered_at = 0  # the position the registrations were read to
        self.streams_read = 0  # how many patients' findings were (re)computed or decoded (for the tests)
        self.streams_derived = 0  # how many streams time travel read from the log (for the tests)

    def refresh(self) -> None:
        """Bring the findings up to the log: the read model's rows past the last position seen (or, without
        the table, the streams with events past it, derived), and the registrations since."""
        if self.keeper.available():
            self.keeper.catch_up()
            if self._kept.read():
                self._patients.clear()
            for key, (version, doc) in self._kept.rows.items():
                if self._stale(key, version):
                    self._keep(key, version, doc)
        else:
            self._derive(self.app.recorder.max_notification_id() or 0)
        self._read_registrations(self.app.recorder.max_notification_id() or 0)

    def _stale(self, key: Any, version: int) -> bool:
        found = self._patients.get(key)
        return found is None or found[0] != version

    def _keep(self, key: Any, version: int, doc: dict[str, Any]) -> None:
        self._patients[key] = (version, PatientAudit.of(doc))
        self.streams_read += 1

    def _derive(self, head: int) -> None:
        """Without the table: the rows of each patient stream with events past the last position seen."""
        for chunk in replay.chunks(replay.stream_heads(self.app, self._position, head)):
            for last, topic, events in replay.iter_streams(self.app, chunk, AUDIT.prefixes):
                stream = Stream(last.originator_id, last.position, topic, events, *fold(events))
                self._keep(last.originator_id, last.version, finding_rows(stream, self.app.protocol)[0][2])
        self._position = max(self._position, head)

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
        by_subject = {p.subject: p for _, p in self._patients.values()}
        return [p for s, site in self._registered if in_scope(site) and (p := by_subject.get(s)) is not None]

    def tables(self, in_scope: Callable[[str], bool], now: datetime,
               kinds: tuple[str, ...] = KINDS) -> tuple[Merged, list[dict[str, Any]]]:
        """The exception rows (of ``kinds``; merged lazily, :class:`Merged`) and every deviation row of the
        patients the viewer sees (registered at a site ``in_scope``, in registration order as
        ``app.subjects()`` lists them), as of now."""
        with self._lock, fewer_collections():  # a first read makes every patient's rows: no cycle scans meanwhile
            self.refresh()
            visible = self._visible(in_scope)
            exceptions = Merged([p.exceptions for p in visible], kinds, [p.counts for p in visible])
            deviations = [row for p in visible for row in p.deviations]
        return exceptions, deviations

    def findings_as_of(self, app: Any, as_of: datetime,
                       kinds: tuple[str, ...] = KINDS) -> tuple[Merged, list[dict[str, Any]]]:
        """``exception_rows(app, as_of, kinds)`` (merged lazily) and every deviation row of the patients
        ``app`` sees as its streams say as of ``as_of`` (:func:`~.deviations.deviation_rows` without
        the cut-off and scope filters of the report), from the kept rows: see the module docstring."""
        found: list[Found] = []
        counts: list[Counter[str]] = []
        parts: list[list[dict[str, Any]] | str] = []  # each patient's deviation rows, or its subject if derived
        with self._lock, fewer_collections():  # a first read makes every patient's rows: no cycle scans meanwhile
            self.refresh()
            for p in self._visible(app.in_scope):
                if p.span is not None and p.span[0] > as_of:
                    continue  # not yet registered then
                if p.span is not None and p.span[1] <= as_of:  # whole by then: its rows, not parsed
                    found.append(p.exceptions)
                    counts.append(p.counts)
                    parts.append(p.deviations)
                    continue
                rows, first = list(p.exceptions[0]), p.exceptions[1]
                kept = rows[:bisect_right(rows, as_of, key=lambda r: r["recorded_at"])]
                found.append((kept, {k: v for k, v in first.items() if v[0] <= as_of}))
                counts.append(Counter(r["kind"] for r in kept))
                parts.append(p.subject)
        straddling = [part for part in parts if isinstance(part, str)]
        derived: dict[str, list[dict[str, Any]]] = {}
        with fewer_collections():
            for subject, events in patient_streams(app, as_of, straddling):
                derived[subject] = patient_deviations(subject, events, app.protocol, now=as_of)
        self.streams_derived += len(straddling)
        deviations = [row for part in parts for row in (derived.get(part, []) if isinstance(part, str) else part)]
        return Merged(found, kinds, counts), deviations


model_of: PerStore[AuditModel] = PerStore(AuditModel)  # the one audit model of a store in this process
