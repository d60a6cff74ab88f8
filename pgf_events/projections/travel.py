"""The cohort as the store knew it at a time (``as_of``) and/or at a data cut-off, derived once and
shared by the pages that show it (issue 17's time travel).

What a page shows of a patient is a pure function of the prefix of that patient's stream recorded by
``as_of`` (``pgf report --as-of``: up to the first event recorded later) and of the cut-off. So as
of a time, with the read models at hand (:func:`_kept_rows`), each patient stream is one of three:

- *not yet there*: its first event was recorded after ``as_of``: left out, nothing read;
- *whole*: every one of its events was recorded by ``as_of`` (the latest recorded time of any of
  them, which the worklist model keeps per stream, :func:`.worklist_rows.recorded_span`): as of
  then its rows are the ones the read models hold now, read from the in-memory
  :class:`~.snapshot.Snapshot` and the worklist model, not derived;
- *straddling*: only those are read from the log, decoded up to their first event recorded later,
  folded and derived.

A patient list a quarter ago thus costs the patients active since, not the cohort. A data cut-off
changes every patient's derived state (the evaluation date is the cut-off), so at a cut-off every
patient is derived from the log as before; the worklist's part does not depend on the cut-off and is
read the same way. Without read models (a site-scoped PostgreSQL login, whom row-level security
keeps from them) every patient is read and derived from the log. ``tests/projections/test_travel.py``
compares the two ways at many times, with corrections and voids recorded long after the events they
change.

:func:`cohort_at` keeps, per patient, the slices of every projection (evaluated at ``cutoff``;
patients who entered the trial after it are left out, as ``pgf report --cutoff`` does);
:func:`known_at` keeps the worklist's part: each patient's :class:`~.worklist.WorklistInputs` (which do
not depend on the cut-off) and the open data queries as of then. The result is kept per application
for the log head, protocol, as-of and cut-off (the last :data:`KEPT`): a second page at the same time
travel derives nothing, and any new event (a new head) makes a new one.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import attrs

from pgf_events.domain.review import Review
from pgf_events.gc_tuning import fewer_collections
from pgf_events.projections import cutoff_rows, replay
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.queries import registered_by
from pgf_events.projections.signatures import signatures
from pgf_events.projections.slices import PROJECTIONS, all_slices
from pgf_events.projections.snapshot import snapshot_of
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.worklist import WorklistInputs, open_queries
from pgf_events.projections.worklist_model import model_of
from pgf_events.topics import PATIENT_TOPIC_PREFIX, STORED_TOPICS, topic_of

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
                  known: bool = True, store: ProjectionStore | None = None) -> CohortAt:
    """Every patient as known ``as_of`` and evaluated at ``cutoff`` (see the module docstring); not
    cached. Without ``slices`` only the worklist's part is made (each patient folded, not derived);
    without ``known`` only the slices (``known`` is then None). With the read models of ``store``, a
    patient whose stream was whole by ``as_of`` is read from them instead (:func:`_kept_rows`)."""
    with fewer_collections():  # a cohort's rows and events are many small objects: no full scans meanwhile
        return _derive_cohort(app, as_of, cutoff, slices=slices, known=known, store=store)


def _derive_cohort(app: Any, as_of: datetime | None, cutoff: date | None, *, slices: bool, known: bool,
                   store: ProjectionStore | None) -> CohortAt:
    until = as_of or FAR
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in PROJECTIONS}
    inputs: list[WorklistInputs] = []
    head = app.recorder.max_notification_id() or 0
    # At a cut-off the rows kept "now" do not answer (the evaluation date is the cut-off): a declared
    # cut-off's rows do (:mod:`.cutoff_rows`); at any other every patient is derived. The worklist's
    # part (which does not depend on the cut-off) can still be read.
    at_cutoff = _cutoff_rows(app, store, cutoff) if slices and cutoff is not None else None
    kept = None if slices and cutoff is not None and at_cutoff is None else \
        _kept_rows(app, store, slices=slices and cutoff is None, known=known)
    if kept is None:
        heads = replay.stream_heads(app, 0, head)
    else:
        heads = []
        for row in kept:
            if row.first > until:
                continue  # not yet registered then
            found: dict[str, dict[str, Any]] | None = row.slices
            whole = row.whole
            if at_cutoff is not None:  # the declared cut-off's row of the same stream version
                hit = at_cutoff.get((row.key, cutoff_rows.KIND))
                whole = hit is not None and hit[0] == row.version
                found = hit[1]["slices"] if hit is not None and whole else None
            if row.last <= until and whole:  # every event recorded by then: the rows are the answer
                if known:
                    inputs.append(row.inputs)
                if slices and found is not None:  # None: not yet in the cohort at the cut-off
                    for name in PROJECTIONS:
                        out[name].append(found[name])
            else:
                heads.append(replay.StreamHead(row.stream, row.version, row.position, row.version))
    _derive_streams(app, heads, until, cutoff, out if slices else None, inputs if known else None)
    for rows in out.values():
        rows.sort(key=lambda s: s["subject"])
    if not known:
        return CohortAt(slices=out, known=None)
    queries = _queries_now(app, store) if as_of is None and kept is not None else _queries_at(app, until, head)
    return CohortAt(slices=out, known=Known(inputs=sorted(inputs, key=lambda i: i.subject), queries=queries))


def _derive_streams(app: Any, heads: list[replay.StreamHead], until: datetime, cutoff: date | None,
                    out: dict[str, list[dict[str, Any]]] | None, inputs: list[WorklistInputs] | None) -> None:
    """Fold (into ``inputs``) and derive (into ``out``) each patient stream of ``heads`` as recorded by ``until``."""
    for chunk in replay.chunks(heads):
        for prefix in _prefixes(app, chunk, until):
            if not prefix:
                continue
            patient, recorded = fold(prefix)
            assert patient is not None
            if inputs is not None:
                inputs.append(WorklistInputs.of(patient, recorded, any(s["valid"] for s in signatures(prefix))))
            if out is not None and registered_by(patient, cutoff):
                for name, data in all_slices(derive_patient(patient, app.protocol, recorded, cutoff=cutoff)
                                             .as_json()).items():
                    out[name].append(data)


def _prefixes(app: Any, heads: list[replay.StreamHead], until: datetime) -> Iterator[list[Any]]:
    """The events of each patient stream of ``heads`` recorded by ``until``, as :func:`.queries.fold_as_of`
    takes them (up to the first one recorded later); the events after that are not decoded."""
    recorder, mapper = app.recorder, app.mapper
    if not hasattr(recorder, "stream_rows"):
        for _, events in replay.iter_patient_streams(app, heads):
            yield events[:next((i for i, e in enumerate(events) if e.timestamp > until), len(events))]
        return
    decode = mapper.decode
    for head, rows in zip(heads, recorder.stream_rows([(h.originator_id, h.version) for h in heads]), strict=True):
        if not rows or not rows[0][1].startswith(PATIENT_TOPIC_PREFIX):
            continue  # reviews, the user directory, import batches
        prefix = []
        for row in rows:  # version, topic, state[, stamps]
            event = decode(head.originator_id, *row)
            if event.timestamp > until:
                break
            prefix.append(event)
        yield prefix


@attrs.frozen
class KeptRow:
    """One patient stream as the read models hold it now (whole: every projection's row reflects the
    version the worklist row does)."""

    key: str  # the subject key of its rows
    stream: UUID
    version: int
    position: int  # unused (0): the streams are read by id and version
    first: datetime  # when its first event was recorded
    last: datetime  # the latest recorded time of any of its events
    whole: bool
    inputs: WorklistInputs
    slices: dict[str, dict[str, Any]]


def _kept_rows(app: Any, store: ProjectionStore | None, *, slices: bool, known: bool) -> list[KeptRow] | None:
    """Every patient stream's rows now, from the worklist model (its inputs and recorded times) and,
    with ``slices``, every projection's row; None when the read models cannot be used (no store, a
    site-scoped login, which they are kept from, or a model that cannot be made here).

    Sound because every row is a pure function of its stream's events: a stream whose events were all
    recorded by ``as_of`` has, as of then, exactly the rows it has now (the tests compare them with
    the derivation from the log at many times)."""
    if store is None or app.site_scope is not None:
        return None
    model = model_of(store)
    if not model.available():
        return None
    model.catch_up()
    versioned: dict[str, Mapping[str, tuple[int, dict[str, Any]]]] = {}
    if slices:
        store.catch_up(PROJECTIONS)
        snapshot = snapshot_of(store)
        versioned = {name: snapshot.versioned(name) for name in PROJECTIONS}
    out = []
    with _LOCK:
        spans = _SPANS.setdefault(model, {})
    for (key, kind), (version, data) in model.rows().items():
        if kind != "patient":
            continue
        span = spans.get(key)
        if span is None or span[0] is not data:
            recorded = data.get("recorded")
            if recorded is None:
                return None  # rows written before they said when (a rebuild will add it)
            span = spans[key] = (data, UUID(recorded["stream"]), datetime.fromisoformat(recorded["first"]),
                                 datetime.fromisoformat(recorded["last"]))
        found = {name: rows.get(key) for name, rows in versioned.items()}  # the same subject key in every table
        whole = all(hit is not None and hit[0] == version for hit in found.values())
        out.append(KeptRow(key, span[1], version, 0, span[2], span[3], whole,
                           model.inputs_of(key, version, data) if known else None,  # type: ignore[arg-type]
                           {name: hit[1] for name, hit in found.items() if hit is not None}))
    return out


# Each worklist row's stream id and recorded times, parsed once per row (a refreshed row is a new object).
_SPANS: weakref.WeakKeyDictionary[Any, dict[str, tuple[dict[str, Any], UUID, datetime, datetime]]] = \
    weakref.WeakKeyDictionary()


def _cutoff_rows(app: Any, store: ProjectionStore | None, cutoff: date) -> dict[tuple[str, str], tuple[int, Any]] | None:
    """The rows kept at ``cutoff`` (:func:`.cutoff_rows.rows_of`) when it is declared and the read
    models can be used (not by a site-scoped login, whom they are kept from)."""
    if store is None or app.site_scope is not None:
        return None
    return cutoff_rows.rows_of(store, cutoff)


def _queries_now(app: Any, store: Any) -> dict[str, list[dict[str, Any]]]:
    """The open queries now, from the worklist model's rows (caught up by :func:`_kept_rows`)."""
    return model_of(store).open_queries_now()  # type: ignore[no-any-return]


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


def cohort_at(app: Any, as_of: datetime | None, cutoff: date | None, store: ProjectionStore | None = None) -> CohortAt:
    """Every projection's slices (:func:`derive_cohort` without the worklist's part), kept per
    application for (log head, protocol, as-of, cut-off)."""
    return _kept(app, (*_head_key(app), "cohort", as_of, cutoff),  # type: ignore[no-any-return]
                 lambda: derive_cohort(app, as_of, cutoff, known=False, store=store))


def known_at(app: Any, as_of: datetime | None, store: ProjectionStore | None = None) -> Known:
    """The worklist's part as known ``as_of`` (each patient folded, not derived), kept like
    :func:`cohort_at`."""
    return _kept(app, (*_head_key(app), "known", as_of),  # type: ignore[no-any-return]
                 lambda: derive_cohort(app, as_of, None, slices=False, store=store).known)


def forget() -> None:
    """Drop every kept cohort (the next time-travel look derives again; the benchmark's first look)."""
    with _LOCK:
        _KEPT.clear()
