"""The fast path of ``pgf audit verify`` on a SQLite file: one pass, split over the CPU's cores.

:func:`pgf_events.audit.verify.verify` merges two streams (events, links) and builds each event's
link material as a separate object: clear, and it names every kind of break precisely, but it costs
four times a bare "select and hash". Here one query joins each event to the link at its position,
read as plain tuples in batches (``fetchmany``), the material is packed by one ``struct`` call per
event (the stream id's bytes and each topic's format are computed once, the id looked up once per
run of the stream's events) and the state handed to the hash as it is; nothing is kept. At the
first sign of trouble (an event without a link, a hash that differs, a value that does not pack) a
segment gives up and ``verify`` runs the precise algorithm from the start, which finds and names the
first break; an intact log born chained is never read twice.

That no link lies outside the events is known without counting the links: every event has its own
(the loop saw it), the events fill their range with no gap (their count is the span of their
positions), and no link lies after the last event (or below 1). Backfilled links (a store chained by
``pgf db upgrade``) read as missing on the first pass, which then gives up at the first of them: the
range is read again with the plain link column and the backfilled links counted by a scan of the
chain. In a store born chained, every link the loop compared has proved it was not backfilled.

Segments: a link is checked as SHA-256(previous *stored* link || material) = stored link. When every
link checks, induction from GENESIS makes each stored link the recomputed one, so the log can be
cut in two and each half checked from the stored link before it, in its own process. The first
break of the sequential algorithm is the first mismatch of the first half that has one: the
precise rerun finds it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
from typing import Any, NamedTuple

from pgf_events.audit.chain import GENESIS
from pgf_events.gc_tuning import usable_cpus

PARALLEL_MIN_EVENTS = 200_000  # below this, starting a second process costs more than it saves
# Read the file through a memory map: a scan of the whole log then costs no read() system call per
# page (a tenth of a second of kernel time per million events). SQLite caps it at its own maximum.
MMAP_BYTES = 1 << 40


class Segment(NamedTuple):
    count: int  # type: ignore[assignment]  # shadows tuple.count, as a NamedTuple field may
    backfilled: int
    last: int  # position of its last event (0 if none)
    digest: bytes  # the running hash after its last event
    marks: dict[int, bytes]  # the running hash at the asked positions (head, checkpoint) it passed


def check_segment(c: Any, events: str, chain: str, after: int, stop: int, marks: frozenset[int]) -> Segment | None:
    """Check the events in positions (after, stop] against their links; None at the first doubt.

    ``c`` is a ``sqlite3`` connection or a cursor of one (read in that cursor's transaction). The range
    is read in pieces ending at the asked positions (``marks``), so the loop keeps no position per
    event; what the loop does not need (the last position, that no link lies outside the events) is
    asked of SQLite afterwards.
    """
    from pgf_events.audit.recorders import _bytes  # noqa: PLC0415 - tolerant reader of tampered cells

    # Plain tuples: the recorder's connection makes a sqlite3.Row of every row (for the library's
    # reads), which cost a sixth of the loop's time. A cursor of the same connection reads in its
    # transaction.
    cur = (c if isinstance(c, sqlite3.Connection) else c.connection).cursor()
    cur.row_factory = None
    try:
        if after == 0:
            digest = GENESIS
        else:
            row = cur.execute(f"SELECT hash FROM {chain} WHERE position = ?", (after,)).fetchone()
            if row is None:
                return None
            digest = _bytes(row[0])
        mapped = cur.execute("PRAGMA mmap_size").fetchone()
        if mapped is not None:
            cur.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        try:
            try:
                return _check_segment(cur, events, chain, after, stop, marks, digest, born_chained=True)
            except _NullLink:  # a backfilled link (a store chained by 'pgf db upgrade'), or a missing one
                return _check_segment(cur, events, chain, after, stop, marks, digest, born_chained=False)
        finally:
            if mapped is not None:
                cur.execute(f"PRAGMA mmap_size = {int(mapped[0])}")
    finally:
        cur.close()


# The loop's link column, for a store born chained (every link made as its event was written). A
# backfilled link reads as no link (NULL): the loop gives up on it (_NullLink) and the range is read
# again with the plain column, its backfilled links then counted by a scan of the chain. Otherwise
# every link has proved it was not backfilled, and no scan is needed.
LINK_UNLESS_BACKFILLED = "CASE WHEN c.backfilled THEN NULL ELSE c.hash END"
# Rows per fetchmany: the events are counted by the batch, not by the row. A batch of 500 rows
# (~300 KB of tuples and payloads) is still in the core's cache when the loop hashes it: 3% less CPU
# than batches of 2,000 over a million events on one core (128 to 500 rows measure the same).
FETCH = 500


class _NullLink(Exception):
    """The loop for a store born chained met a NULL link: a backfilled one, or none at all."""


def _check_segment(c: Any, events: str, chain: str, after: int, stop: int, marks: frozenset[int],
                   digest: bytes, born_chained: bool) -> Segment | None:
    caches: tuple[dict[Any, bytes], dict[Any, Any]] = ({}, {})
    seen: dict[int, bytes] = {}
    count = 0
    link = LINK_UNLESS_BACKFILLED if born_chained else "c.hash"
    for lo, hi in _pieces(after, stop, marks):
        checked = _check_rows(c, events, chain, lo, hi, digest, caches, link)
        if checked is None:
            return None
        digest, n = checked
        count += n
        if hi in marks and c.execute(f"SELECT 1 FROM {events} WHERE rowid = ?", (hi,)).fetchone():
            seen[hi] = digest
    last = c.execute(f"SELECT MAX(rowid) FROM {events} WHERE rowid > ? AND rowid <= ?", (after, stop)).fetchone()[0]
    # Every event of the range has its link at its position (the loop); a link without an event makes
    # the links outnumber the events. Links at positions below 1 belong to the first segment.
    if born_chained and _no_stray_links(c, chain, after, stop, last or after, count):
        return Segment(count, 0, last or 0, digest, seen)
    links, backfilled = c.execute(
        f"SELECT COUNT(*), COALESCE(SUM(backfilled), 0) FROM {chain} WHERE position <= ?"
        + (" AND position > ?" if after else ""), (stop, after) if after else (stop,)).fetchone()
    if links != count:
        return None
    return Segment(count, int(backfilled), last or 0, digest, seen)


def _no_stray_links(c: Any, chain: str, after: int, stop: int, last: int, count: int) -> bool:
    """Whether the range's links are exactly its ``count`` events' (each with its own, the loop saw),
    known without counting them (a scan of the chain): when the events fill (after, last] with no gap,
    so do their links, and no link may lie in (last, stop] (nor below 1, in the first segment)."""
    if count != last - after:
        return False  # a gap in the events' positions (never in a log the engine wrote): count the links
    beyond = c.execute(f"SELECT 1 FROM {chain} WHERE position > ? AND position <= ? LIMIT 1", (last, stop)).fetchone()
    below = after == 0 and c.execute(f"SELECT 1 FROM {chain} WHERE position < 1 LIMIT 1").fetchone()
    return beyond is None and not below


def _pieces(after: int, stop: int, marks: frozenset[int]) -> list[tuple[int, int]]:
    """(after, stop] cut after every mark inside it."""
    cuts = sorted(m for m in marks if after < m < stop) + [stop]
    return list(zip([after, *cuts[:-1]], cuts, strict=True))


_NOTHING = object()  # the stream id "before" the first row: equal to no value a cell can hold


def _check_rows(c: Any, events: str, chain: str, after: int, stop: int, digest: bytes,
                caches: tuple[dict[Any, bytes], dict[Any, Any]], link_column: str) -> tuple[bytes, int] | None:
    """The running hash over (after, stop] and how many events, or None at the first doubt."""
    from pgf_events.audit.recorders import _oid  # noqa: PLC0415 - tolerant reader of tampered cells

    sha256 = hashlib.sha256
    oids, packers = caches
    count = 0
    previous: Any = _NOTHING
    o = b""
    fetch = c.execute(
        f"SELECT e.originator_id, e.originator_version, e.topic, e.state, {link_column} "
        f"FROM {events} e LEFT JOIN {chain} c ON c.position = e.rowid "
        "WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid",
        (after, stop),
    ).fetchmany
    try:
        while rows := fetch(FETCH):
            count += len(rows)
            for oid, version, topic, state, link in rows:
                if oid != previous:  # a stream's events mostly come in runs: its id is looked up once a run
                    try:
                        o = oids[oid]
                    except KeyError:
                        o = oids[oid] = _oid(oid)
                    previous = oid
                try:
                    pack, named = packers[topic]
                except KeyError:
                    topic_bytes = (topic or "").encode("utf-8")
                    named = len(topic_bytes).to_bytes(4, "big") + topic_bytes  # the topic's length and bytes
                    # previous hash, stream id, version, topic (length and bytes), state length: the previous
                    # hash and chain.link_material's head in one call
                    pack, named = packers[topic] = (struct.Struct(f">32s16sq{len(named)}sQ").pack, named)
                # the state goes to the hash as it is (no copy appended to the packed head); a state
                # rewritten as text makes update raise TypeError: the precise path reads it as bytes
                h = sha256(pack(digest, o, version, named, len(state)))
                h.update(state)
                digest = h.digest()
                if digest != link:  # a different hash, or no link at all (None)
                    if link is None and link_column == LINK_UNLESS_BACKFILLED:
                        raise _NullLink
                    return None
    except (struct.error, AttributeError, TypeError, ValueError, OverflowError):  # a tampered cell: let the precise path say so
        return None
    return digest, count


def _in_process(path: str, events: str, chain: str, after: int, stop: int, marks: frozenset[int]) -> Segment | None:
    conn = sqlite3.connect(path)
    try:
        return check_segment(conn, events, chain, after, stop, marks)
    finally:
        conn.close()


def check_all(reader: Any, stop: int, marks: frozenset[int]) -> list[Segment | None]:
    """Every event up to ``stop``, in two processes when the log is big and the store a file."""
    path = reader.file_path()
    if path is None or stop < PARALLEL_MIN_EVENTS or usable_cpus() < 2:
        return [reader.check_segment(0, stop, marks)]
    import multiprocessing  # noqa: PLC0415 - only a big log on two cores needs it (ms of every start-up)

    from pgf_events.workers import die_with_parent  # noqa: PLC0415

    if "fork" not in multiprocessing.get_all_start_methods():
        return [reader.check_segment(0, stop, marks)]
    middle = stop // 2
    # fork: the child needs nothing but this module, already loaded, and opens the file itself.
    with multiprocessing.get_context("fork").Pool(1, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        second = pool.apply_async(_in_process, (path, reader.events_table_name, reader.chain_table, middle, stop,
                                                marks))
        first = reader.check_segment(0, middle, marks)
        return [first, second.get()]
