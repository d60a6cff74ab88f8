"""The fast path of ``pgf audit verify`` on a SQLite file: one pass, split over the CPU's cores.

:func:`pgf_events.audit.verify.verify` merges two streams (events, links) and builds each event's
link material as a separate object: clear, and it names every kind of break precisely, but it costs
four times a bare "select and hash". Here one query joins each event to the link at its position,
the material is packed by one ``struct`` call per event (the stream id's bytes and each topic's
format are computed once), and nothing is kept. At the first sign of trouble (an event without a
link, a hash that differs, a value that does not pack) a segment gives up and ``verify`` runs the
precise algorithm from the start, which finds and names the first break; an intact log is never
read twice.

Segments: a link is checked as SHA-256(previous *stored* link || material) = stored link. When every
link checks, induction from GENESIS makes each stored link the recomputed one, so the log can be
cut in two and each half checked from the stored link before it, in its own process. The first
break of the sequential algorithm is the first mismatch of the first half that has one: the
precise rerun finds it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import struct
from typing import Any, NamedTuple

from pgf_events.audit.chain import GENESIS
from pgf_events.gc_tuning import usable_cpus
from pgf_events.workers import die_with_parent

PARALLEL_MIN_EVENTS = 200_000  # below this, starting a second process costs more than it saves


class Segment(NamedTuple):
    count: int  # type: ignore[assignment]  # shadows tuple.count, as a NamedTuple field may
    backfilled: int
    last: int  # position of its last event (0 if none)
    digest: bytes  # the running hash after its last event
    marks: dict[int, bytes]  # the running hash at the asked positions (head, checkpoint) it passed


def check_segment(c: Any, events: str, chain: str, after: int, stop: int, marks: frozenset[int]) -> Segment | None:
    """Check the events in positions (after, stop] against their links; None at the first doubt."""
    from pgf_events.audit.recorders import _bytes, _oid  # noqa: PLC0415 - tolerant readers of tampered cells

    if after == 0:
        digest = GENESIS
    else:
        row = c.execute(f"SELECT hash FROM {chain} WHERE position = ?", (after,)).fetchone()
        if row is None:
            return None
        digest = _bytes(row[0])
    sha256, join = hashlib.sha256, b"".join
    oids: dict[Any, bytes] = {}
    packers: dict[Any, tuple[Any, int, bytes]] = {}
    seen: dict[int, bytes] = {}
    count = backfilled = last = 0
    rows = c.execute(
        f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, c.hash, c.backfilled "
        f"FROM {events} e LEFT JOIN {chain} c ON c.position = e.rowid "
        "WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid",
        (after, stop),
    )
    try:
        for position, oid, version, topic, state, link, back in rows:
            if link is None:
                return None
            o = oids.get(oid)
            if o is None:
                o = oids[oid] = _oid(oid)
            packer = packers.get(topic)
            if packer is None:
                topic_bytes = (topic or "").encode("utf-8")
                # stream id, version, topic length, topic, state length: chain.link_material in one call
                packer = packers[topic] = (struct.Struct(f">16sqI{len(topic_bytes)}sQ").pack, len(topic_bytes),
                                           topic_bytes)
            if type(state) is not bytes:
                state = _bytes(state)
            digest = sha256(join((digest, packer[0](o, version, packer[1], packer[2], len(state)), state))).digest()
            if digest != link:
                return None
            if position in marks:
                seen[position] = digest
            count += 1
            backfilled += back
            last = position
    except (struct.error, TypeError, ValueError, OverflowError):  # a tampered cell: let the precise path say so
        return None
    return Segment(count, backfilled, last, digest, seen)


def _in_process(path: str, events: str, chain: str, after: int, stop: int, marks: frozenset[int]) -> Segment | None:
    conn = sqlite3.connect(path)
    try:
        return check_segment(conn, events, chain, after, stop, marks)
    finally:
        conn.close()


def check_all(reader: Any, stop: int, marks: frozenset[int]) -> list[Segment | None]:
    """Every event up to ``stop``, in two processes when the log is big and the store a file."""
    path = reader.file_path()
    fork = "fork" in multiprocessing.get_all_start_methods()
    if path is None or stop < PARALLEL_MIN_EVENTS or usable_cpus() < 2 or not fork:
        return [reader.check_segment(0, stop, marks)]
    middle = stop // 2
    # fork: the child needs nothing but this module, already loaded, and opens the file itself.
    with multiprocessing.get_context("fork").Pool(1, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        second = pool.apply_async(_in_process, (path, reader.events_table_name, reader.chain_table, middle, stop,
                                                marks))
        first = reader.check_segment(0, middle, marks)
        return [first, second.get()]
