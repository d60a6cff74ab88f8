"""Reading the log stream by stream: how a rebuild, or a catch-up far behind, visits the events.

Catching up in log order derives every patient touched by a batch at the end of that batch, and
keeps every patient seen in memory; in a registry whose patients are recorded side by side, a
rebuild then derives each patient once per batch and holds the whole cohort. Replaying by stream
instead takes the streams with events in ``(after, stop]`` in the order of their last event there,
folds each one from its first event to that last one, and derives it once: time linear in the
events, memory bounded by one chunk of streams.

The chained recorders answer both questions with one indexed query each (``stream_heads``,
``stream_rows``); any other recorder (the in-memory one) is read through the library's API.

Deriving is pure (events + protocol -> slices), so a big replay of a store on disk shares it with a
second process (:func:`derived_chunks`): that process derives two chunks in three while this one
derives the third and writes every chunk, in order. Writing stays in one process, so exactly-once
and the order of commits are unchanged.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from pgf_events.application import TrialConduct
from pgf_events.gc_tuning import BULK_THRESHOLD, usable_cpus
from pgf_events.log import notifications
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.slices import all_slices
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX
from pgf_events.workers import die_with_parent

CHUNK_EVENTS = 20_000  # events read, folded and derived per chunk (bounds memory, not correctness)
PARALLEL_MIN_EVENTS = 100_000  # below this a second process costs more (its start-up) than it saves
AHEAD = 2  # chunks the second process may run ahead of the writer (bounds memory)


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


def patient_streams(app: Any, heads: Sequence[StreamHead]) -> list[tuple[StreamHead, list[Any]]]:
    """The decoded events of each patient stream, versions 1 .. head.version (other streams skipped)."""
    return list(iter_patient_streams(app, heads))


def iter_patient_streams(app: Any, heads: Sequence[StreamHead]) -> Iterator[tuple[StreamHead, list[Any]]]:
    """:func:`patient_streams` one stream at a time: the rows of every stream are read at once, each
    stream is decoded when it is asked for, so only one stream's events are alive at a time (a
    chunk's decoded events held together cost more in memory allocation than their decoding)."""
    recorder, mapper = app.recorder, app.mapper
    if hasattr(recorder, "stream_rows"):
        decode = mapper.decode
        for head, rows in zip(heads, recorder.stream_rows([(h.originator_id, h.version) for h in heads]), strict=True):
            if rows and rows[0][1].startswith(PATIENT_TOPIC_PREFIX):
                oid = head.originator_id
                yield head, [decode(oid, *row) for row in rows]  # row: version, topic, state[, stamps]
        return
    for head in heads:
        stored = recorder.select_events(head.originator_id, lte=head.version)
        if stored and stored[0].topic.startswith(PATIENT_TOPIC_PREFIX):
            yield head, [mapper.to_domain_event(s) for s in stored]


class Derived(NamedTuple):
    """One patient's derived slices, and what its rows and change rows record about its last event."""

    originator_id: UUID
    position: int
    originator_version: int
    timestamp: datetime
    subject: str
    slices: dict[str, dict[str, Any]]


def derive_chunk(app: Any, params: Protocol, chunk: Sequence[StreamHead]) -> list[Derived]:
    out = []
    for head, events in iter_patient_streams(app, chunk):
        patient, recorded = fold(events)
        assert patient is not None
        slices = all_slices(derive_patient(patient, params, recorded).as_json())
        last = events[-1]
        out.append(Derived(head.originator_id, head.position, last.originator_version, last.timestamp,
                           patient.subject, slices))
    return out


def derived_chunks(app: Any, params: Protocol, heads: Sequence[StreamHead]) -> Iterator[tuple[list[StreamHead],
                                                                                               list[Derived]]]:
    """Each chunk of ``heads`` with its patients derived, in order (see the module docstring)."""
    plan = list(chunks(heads))
    if not _share(app, heads, plan):
        for chunk in plan:
            yield chunk, derive_chunk(app, params, chunk)
        return
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(app.store, params, os.getpid()))
    pending: dict[int, Future[list[Derived]]] = {}
    try:
        for i, chunk in enumerate(plan):
            for j in range(i + 1, min(i + 1 + AHEAD, len(plan))):
                if j % 3 and j not in pending:
                    pending[j] = pool.submit(_derive_in_worker, plan[j])
            yield chunk, (pending.pop(i).result() if i % 3 else derive_chunk(app, params, chunk))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _share(app: Any, heads: Sequence[StreamHead], plan: list[list[StreamHead]]) -> bool:
    store = app.store
    on_disk = store.backend == "postgresql" or (store.backend == "sqlite" and store.sqlite_path is not None)
    return (on_disk and len(plan) >= 3 and usable_cpus() >= 2
            and sum(h.version for h in heads) >= PARALLEL_MIN_EVENTS)


_WORKER: dict[str, Any] = {}


def _start_worker(store: Any, params: Protocol, parent: int) -> None:
    die_with_parent(parent)
    gc.set_threshold(BULK_THRESHOLD, *gc.get_threshold()[1:])
    _WORKER["app"], _WORKER["params"] = TrialConduct(store, params), params


def _derive_in_worker(chunk: list[StreamHead]) -> list[Derived]:
    return derive_chunk(_WORKER["app"], _WORKER["params"], chunk)
