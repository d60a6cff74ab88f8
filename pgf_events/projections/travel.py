"""The cohort as the store knew it at a time (``as_of``) and/or at a data cut-off, derived once and
shared by the pages that show it (issue 17's time travel).

No read model holds the past: every time-travel view folds and derives each patient from the log
(``pgf report --as-of`` does the same). A dashboard, a patient list and a worklist at the same
(as-of, cut-off) used to derive the cohort once each (the patient list four times, once per
report it lists). :func:`cohort_at` reads the log once, stream by stream (:mod:`.replay`), folds each
patient to what was recorded by ``as_of``, and keeps, per patient, the slices of every projection
(evaluated at ``cutoff``; patients who entered the trial after it are left out, as ``pgf report
--cutoff`` does). :func:`known_at` keeps the worklist's part: each patient folded (not derived) into
its :class:`~.worklist.WorklistInputs` (which do not depend on the cut-off), and the open data
queries as of then. The result is kept per application for the
log head, protocol, as-of and cut-off (the last :data:`KEPT`): a second page at the same time travel
derives nothing, and any new event (a new head) makes a new one.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import Any

import attrs

from pgf_events.domain.review import Review
from pgf_events.projections import replay
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.queries import registered_by
from pgf_events.projections.signatures import signatures
from pgf_events.projections.slices import PROJECTIONS, all_slices
from pgf_events.projections.worklist import WorklistInputs, open_queries
from pgf_events.topics import STORED_TOPICS, topic_of

FAR = datetime.max.replace(tzinfo=UTC)
KEPT = 2  # cohorts (and as many worklist parts) kept per application (each about the size of the read models' rows)
REVIEW_TOPICS = [topic for topic in STORED_TOPICS if topic.startswith(topic_of(Review) + ".")]  # its events


@attrs.frozen
class Known:
    """What the worklist needs of every patient known ``as_of`` (it plans for the cut-off day but hides
    no record, so it does not depend on the cut-off)."""

    inputs: list[WorklistInputs]  # by subject
    queries: dict[str, list[dict[str, Any]]]  # subject -> open queries as of then


@attrs.frozen
class CohortAt:
    """Every patient as known ``as_of`` and evaluated at ``cutoff``."""

    slices: dict[str, list[dict[str, Any]]]  # projection -> slices of the patients registered by the cut-off
    known: Known | None  # the worklist's part, if asked for


def derive_cohort(app: Any, as_of: datetime | None, cutoff: date | None, *, slices: bool = True,
                  known: bool = True) -> CohortAt:
    """Read the log once and derive every patient (see the module docstring); not cached. Without
    ``slices`` only the worklist's part is made (each patient folded, not derived); without ``known``
    only the slices (``known`` is then None)."""
    until = as_of or FAR
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in PROJECTIONS}
    inputs: list[WorklistInputs] = []
    head = app.recorder.max_notification_id() or 0
    for chunk in replay.chunks(replay.stream_heads(app, 0, head)):
        for _, events in replay.iter_patient_streams(app, chunk):
            # The prefix recorded by then (as queries.fold_as_of: up to the first event recorded later).
            prefix = events[:next((i for i, e in enumerate(events) if e.timestamp > until), len(events))]
            if not prefix:
                continue
            patient, recorded = fold(prefix)
            assert patient is not None
            if known:
                inputs.append(WorklistInputs.of(patient, recorded, any(s["valid"] for s in signatures(prefix))))
            if slices and registered_by(patient, cutoff):
                for name, data in all_slices(derive_patient(patient, app.protocol, recorded, cutoff=cutoff)
                                             .as_json()).items():
                    out[name].append(data)
    for rows in out.values():
        rows.sort(key=lambda s: s["subject"])
    return CohortAt(slices=out, known=Known(inputs=sorted(inputs, key=lambda i: i.subject),
                                            queries=_queries_at(app, until, head)) if known else None)


def _queries_at(app: Any, until: datetime, head: int) -> dict[str, list[dict[str, Any]]]:
    """The open queries of every review stream as of ``until`` (review events only: one pass)."""
    reviews: dict[Any, Any] = {}
    done: set[Any] = set()
    start = 1
    while True:
        batch = app.recorder.select_notifications(start=start, limit=1000, stop=head, topics=REVIEW_TOPICS)
        for n in batch:
            if n.originator_id in done:
                continue
            event = app.mapper.to_domain_event(n)
            if event.timestamp > until:
                done.add(n.originator_id)  # later events of that stream were recorded later still
                continue
            reviews[n.originator_id] = event.mutate(reviews.get(n.originator_id))
        if len(batch) < 1000:
            break
        start = batch[-1].id + 1
    return {r.subject: found for r in reviews.values() if (found := open_queries(r))}


_KEPT: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_BUSY: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()


def _kept(app: Any, key: tuple[Any, ...], make: Any) -> Any:
    with _LOCK:
        kept = _KEPT.setdefault(app, OrderedDict())
        busy = _BUSY.setdefault(app, threading.Lock())
    with busy:  # two pages at the same time travel: the second waits for the first's result
        with _LOCK:
            if key in kept:
                kept.move_to_end(key)
                return kept[key]
        found = make()
        with _LOCK:
            kept[key] = found
            while len(kept) > 2 * KEPT:
                kept.popitem(last=False)
        return found


def _head_key(app: Any) -> tuple[Any, ...]:
    return app.recorder.max_notification_id() or 0, app.protocol.version, app.protocol.digest


def cohort_at(app: Any, as_of: datetime | None, cutoff: date | None) -> CohortAt:
    """Every projection's slices (:func:`derive_cohort` without the worklist's part), kept per
    application for (log head, protocol, as-of, cut-off)."""
    return _kept(app, (*_head_key(app), "cohort", as_of, cutoff),  # type: ignore[no-any-return]
                 lambda: derive_cohort(app, as_of, cutoff, known=False))


def known_at(app: Any, as_of: datetime | None) -> Known:
    """The worklist's part as known ``as_of`` (each patient folded, not derived), kept like
    :func:`cohort_at`."""
    return _kept(app, (*_head_key(app), "known", as_of),  # type: ignore[no-any-return]
                 lambda: derive_cohort(app, as_of, None, slices=False).known)


def forget() -> None:
    """Drop every kept cohort (the next time-travel look derives again; the benchmark's first look)."""
    with _LOCK:
        _KEPT.clear()
