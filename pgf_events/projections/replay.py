"""Reading the log stream by stream: how a rebuild, or a catch-up far behind, visits the events.

Catching up in log order derives every patient touched by a batch at the end of that batch, and
keeps every patient seen in memory; in a registry whose patients are recorded side by side, a
rebuild then derives each patient once per batch and holds the whole cohort. Replaying by stream
instead takes the streams with events in ``(after, stop]`` in the order of their last event there,
folds each one from its first event to that last one, and derives it once: time linear in the
events, memory bounded by one chunk of streams. The same fold gives the rows of every stream model
in the pass (:class:`Targets`, :mod:`.stream_models`: the worklist's inputs, ...), so a full
rebuild reads, decodes and folds each stream once, whatever it keeps.

The chained recorders answer both questions with one indexed query each (``stream_heads``,
``stream_rows``); any other recorder (the in-memory one) is read through the library's API.

Deriving is pure (events + protocol -> slices and rows), so a big replay of a store on disk shares it with a
second process (:func:`derived_chunks`): that process derives two chunks in three while this one
derives the third and writes every chunk, in order. Writing stays in one process, so exactly-once
and the order of commits are unchanged.
"""

from __future__ import annotations

import gc
import os
import pickle
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import attrs

from pgf_events.application import TrialConduct
from pgf_events.gc_tuning import BULK_THRESHOLD, usable_cpus
from pgf_events.log import notifications
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.slices import all_slices
from pgf_events.projections.stream_models import Row, Stream, StreamModel
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX

if TYPE_CHECKING:
    from concurrent.futures import Future

CHUNK_EVENTS = 20_000  # events read, folded and derived per chunk (bounds memory, not correctness)
PARALLEL_MIN_EVENTS = 100_000  # below this a second process costs more (its start-up) than it saves
AHEAD = 2  # chunks the second process may run ahead of the writer (bounds memory)
READ_EVENTS = 2_000  # stored rows fetched at once while a chunk is read (bounds memory: not the whole chunk's)


class StreamHead(NamedTuple):
    originator_id: UUID
    version: int  # the stream's last version in the range
    position: int  # the notification id of that version
    count: int  # type: ignore[assignment]  # how many of the stream's events lie in the range (shadows tuple.count)


def stream_heads(app: Any, after: int, stop: int) -> list[StreamHead]:
    """Every stream with events in positions ``(after, stop]``, ordered by the position of its last one."""
    recorder = app.recorder
    if hasattr(recorder, "stream_heads"):
        heads = [StreamHead(*row) for row in recorder.stream_heads(after, stop)]
    else:
        last: dict[UUID, StreamHead] = {}
        for n in notifications(recorder, start=after + 1, stop=stop):
            seen = last.get(n.originator_id)
            last[n.originator_id] = StreamHead(n.originator_id, n.originator_version, n.id,
                                               seen.count + 1 if seen else 1)
        heads = list(last.values())
    return sorted(heads, key=lambda head: head.position)


def count_between(app: Any, after: int, stop: int) -> int:
    """How many notifications lie in positions ``(after, stop]``."""
    if stop <= after:
        return 0
    recorder = app.recorder
    if hasattr(recorder, "count_between"):
        return int(recorder.count_between(after, stop))
    return sum(1 for _ in notifications(recorder, start=after + 1, stop=stop))


def chunks(heads: Sequence[StreamHead], events: int | None = None) -> Iterator[list[StreamHead]]:
    """Consecutive runs of heads holding about ``events`` (default CHUNK_EVENTS) events each; a
    stream is never split."""
    events = events or CHUNK_EVENTS
    chunk: list[StreamHead] = []
    size = 0
    for head in heads:
        chunk.append(head)
        size += head.version
        if size >= events:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def read_slices(heads: Sequence[StreamHead], events: int | None = None) -> Iterator[Sequence[StreamHead]]:
    """Consecutive runs of ``heads`` holding about ``events`` (default READ_EVENTS) events each, a stream
    never split: the streams whose stored rows are fetched together (:func:`iter_streams`)."""
    events = events or READ_EVENTS
    start = size = 0
    for i, head in enumerate(heads):
        size += head.version
        if size >= events:
            yield heads[start:i + 1]
            start, size = i + 1, 0
    if start < len(heads):
        yield heads[start:]


def patient_streams(app: Any, heads: Sequence[StreamHead]) -> list[tuple[StreamHead, list[Any]]]:
    """The decoded events of each patient stream, versions 1 .. head.version (other streams skipped)."""
    return list(iter_patient_streams(app, heads))


def iter_patient_streams(app: Any, heads: Sequence[StreamHead]) -> Iterator[tuple[StreamHead, list[Any]]]:
    """:func:`patient_streams` one stream at a time (see :func:`iter_streams`)."""
    for head, _topic, events in iter_streams(app, heads, (PATIENT_TOPIC_PREFIX,)):
        yield head, events


def iter_streams(app: Any, heads: Sequence[StreamHead],
                 prefixes: tuple[str, ...]) -> Iterator[tuple[StreamHead, str, list[Any]]]:
    """Each stream of ``heads`` whose first topic starts with one of ``prefixes``, with that topic and
    its decoded events (versions 1 .. head.version): the stored rows of about :data:`READ_EVENTS`
    events' streams are read at once (:func:`read_slices`; a stream's rows up to its head never change,
    so each slice may be read in its own transaction), each stream is decoded when it is asked for, so
    only one stream's events are alive at a time (a chunk's decoded events held together cost more in
    memory allocation than their decoding), and only one slice's stored rows (a whole chunk's, 20,000
    events' payloads with their tuples, were some 15 MB more at the peak of each process)."""
    recorder, mapper = app.recorder, app.mapper
    if hasattr(recorder, "stream_rows"):
        decode = mapper.decoder() if hasattr(mapper, "decoder") else mapper.decode
        for part in read_slices(heads):
            for head, rows in zip(part, recorder.stream_rows([(h.originator_id, h.version) for h in part]), strict=True):
                if rows and rows[0][1].startswith(prefixes):
                    oid = head.originator_id
                    yield head, rows[0][1], [decode(oid, *row) for row in rows]  # row: version, topic, state[, stamps]
        return
    for head in heads:
        stored = recorder.select_events(head.originator_id, lte=head.version)
        if stored and stored[0].topic.startswith(prefixes):
            yield head, stored[0].topic, [mapper.to_domain_event(s) for s in stored]


@attrs.frozen
class Targets:
    """What one pass over the streams keeps: the projections (each patient derived) and/or stream
    models (each one's rows of the streams it follows). Picklable (a worker process gets it)."""

    projections: bool = True
    models: tuple[StreamModel, ...] = ()

    @property
    def prefixes(self) -> tuple[str, ...]:
        found = [PATIENT_TOPIC_PREFIX] if self.projections else []
        return tuple(dict.fromkeys(found + [p for m in self.models for p in m.prefixes]))


class Derived(NamedTuple):
    """One stream's derived slices and model rows, and what its rows and change rows record about its
    last event."""

    originator_id: UUID
    position: int
    originator_version: int
    timestamp: datetime
    subject: str
    slices: dict[str, dict[str, Any]] | None  # a patient's projection slices (None: not a patient, or not asked)
    rows: dict[str, list[Row]]  # each stream model's rows of this stream, by model name


def derive_chunk(app: Any, params: Protocol, chunk: Sequence[StreamHead], targets: Targets = Targets()) -> list[Derived]:
    """Each stream of the chunk read, decoded and folded once; its slices and model rows from that fold."""
    out = []
    derive, models = targets.projections, targets.models
    for head, topic, events in iter_streams(app, chunk, targets.prefixes):
        aggregate: Any
        aggregate, recorded = fold(events)
        slices = None
        if derive and topic.startswith(PATIENT_TOPIC_PREFIX):
            slices = all_slices(derive_patient(aggregate, params, recorded).as_json())
        rows: dict[str, list[Row]] = {}
        if models:
            stream = Stream(head.originator_id, head.position, topic, events, aggregate, recorded)
            rows = {m.name: m.rows(stream, params) for m in models if m.wants(topic)}
        last = events[-1]
        out.append(Derived(head.originator_id, head.position, last.originator_version, last.timestamp,
                           getattr(aggregate, "subject", ""), slices, rows))
    return out


def derived_chunks(app: Any, params: Protocol, heads: Sequence[StreamHead],
                   targets: Targets = Targets()) -> Iterator[tuple[list[StreamHead], list[Derived]]]:
    """Each chunk of ``heads`` with its streams derived, in order (see the module docstring)."""
    plan = list(chunks(heads))
    if not _share(app, heads, plan):
        for chunk in plan:
            yield chunk, derive_chunk(app, params, chunk, targets)
        return
    # Only a big replay shares the work: a reader that replays a few streams (``pgf status``, ``pgf report
    # --as-of`` of a small store) does not pay for importing multiprocessing at start-up.
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(app.store, params, os.getpid(), targets))
    pending: dict[int, Future[bytes]] = {}
    try:
        for i, chunk in enumerate(plan):
            for j in range(i + 1, min(i + 1 + AHEAD, len(plan))):
                if j % 3 and j not in pending:
                    pending[j] = pool.submit(_derive_in_worker, plan[j])
            yield chunk, (pickle.loads(pending.pop(i).result()) if i % 3 else derive_chunk(app, params, chunk, targets))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _share(app: Any, heads: Sequence[StreamHead], plan: list[list[StreamHead]]) -> bool:
    store = app.store
    on_disk = store.backend == "postgresql" or (store.backend == "sqlite" and store.sqlite_path is not None)
    return (on_disk and len(plan) >= 3 and usable_cpus() >= 2
            and sum(h.version for h in heads) >= PARALLEL_MIN_EVENTS)


_WORKER: dict[str, Any] = {}


def _start_worker(store: Any, params: Protocol, parent: int, targets: Targets) -> None:
    from pgf_events.workers import die_with_parent  # noqa: PLC0415 - only in the worker (ctypes)

    die_with_parent(parent)
    gc.set_threshold(BULK_THRESHOLD, *gc.get_threshold()[1:])
    _WORKER["app"], _WORKER["params"], _WORKER["targets"] = TrialConduct(store, params), params, targets


def _derive_in_worker(chunk: list[StreamHead]) -> bytes:
    """The chunk's :class:`Derived` rows, pickled: the writer keeps up to :data:`AHEAD` chunks waiting
    as these bytes and makes objects of one only when it writes it (waiting as objects, two chunks'
    documents were some 30 MB more at the writer's peak)."""
    return pickle.dumps(derive_chunk(_WORKER["app"], _WORKER["params"], chunk, _WORKER["targets"]),
                        protocol=pickle.HIGHEST_PROTOCOL)
