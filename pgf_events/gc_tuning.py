"""Cycle collection during bulk work.

Replays, imports and verification allocate millions of small objects (events, records, rows)
that reference counting frees on its own. CPython 3.11 still runs a generation-0 cycle collection
every 700 allocations and a full one now and then, scanning every live object: a third of a
replay's time. Inside :func:`fewer_collections` the collector runs about a hundred times less often.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

BULK_THRESHOLD = 100_000
# A whole read of a read model (thousands of JSON documents, millions of new objects, none of them
# cyclic garbage): no cycle collection at all while it runs. At BULK_THRESHOLD a young collection
# every 100,000 allocations still walks the objects just made and moves them up, and the older
# generations' collections follow over all of them: reading a declared cut-off's 5,750 rows (5,000
# patients) took 0.47 s, 0.22 s without them (AMD EPYC, 2026-12-01). What it made is frozen at the
# end (:func:`made_long_lived`), so no collection meets it afterwards either.
WHOLE_READ_THRESHOLD = 100_000_000


_LOCK = threading.Lock()
_HELD: list[Any] = [0, None, False]  # holders inside (threads, nested blocks); thresholds before; freeze when out
LONG_LIVED = 1_000  # rows of a whole read from which what it made is kept out of the collector's scans


@contextmanager
def fewer_collections(threshold: int = BULK_THRESHOLD) -> Iterator[None]:
    """Collect cycles about a hundred times less often inside. The thresholds are the process's: the
    first holder in raises them, the last one out puts them back (a web server's threads overlap)."""
    with _LOCK:
        if _HELD[0] == 0:
            _HELD[1] = gc.get_threshold()
        _HELD[0] += 1
        old = _HELD[1]
        gc.set_threshold(max(threshold, old[0], gc.get_threshold()[0]), *old[1:])
    try:
        yield
    finally:
        with _LOCK:
            _HELD[0] -= 1
            if _HELD[0] == 0:
                if _HELD[2]:  # first: freezing also zeroes the young generation's count, so the thresholds
                    _HELD[2] = False  # put back do not start a collection over what was just made
                    gc.freeze()
                gc.set_threshold(*_HELD[1])


def made_long_lived(rows: int) -> None:
    """Say that a whole read of a read model (``rows`` rows) just made data that lives as long as the
    process keeps that model. From :data:`LONG_LIVED` rows on, everything then alive is moved out of
    the cycle collector's scans (``gc.freeze``) when the last :func:`fewer_collections` block ends:
    otherwise a full collection over millions of new objects comes due at the end of this request or
    in the next one (0.5 s at 5,000 patients). Reference counting still frees them; only cyclic
    garbage among them would stay (read-model rows are JSON documents: no cycles)."""
    if rows < LONG_LIVED:
        return
    with _LOCK:
        if _HELD[0]:
            _HELD[2] = True
            return
    gc.freeze()


def usable_cpus() -> int:
    """The cores this process may run on (its affinity: ``taskset``, a container's cpuset), which
    decides whether bulk work starts a second process; ``os.cpu_count()`` counts the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# glibc's mallopt parameter for the free memory malloc keeps above the heap's top when it grows or trims it
M_TOP_PAD = -2
HEAP_PAD = 64 << 20


def roomy_heap(pad: int = HEAP_PAD) -> None:
    """Before a bulk import: ask glibc's malloc to keep ``pad`` bytes above the heap's top when it gives
    memory back to the system (``mallopt(M_TOP_PAD)``; for the rest of the process, and a writer process
    it forks).

    Each chunk an import writes frees at once what it held (the rows, their pickled copy for the writer
    process); by default malloc then returns the heap's top to the system, and the next lines grow it
    again 132 KB at a time, every new page a page fault: ~100,000 of them in a 100,000-line lab import
    (a quarter of a second of system time, and slower mallocs), ~10,000 with a 64 MB pad; the peak RSS
    was the same (43 MB). Elsewhere than glibc (no ``mallopt``) nothing changes."""
    import ctypes  # noqa: PLC0415 - only a bulk import asks

    with suppress(OSError, AttributeError, TypeError):  # not glibc (no mallopt), or no C library
        ctypes.CDLL(None).mallopt(M_TOP_PAD, pad)
