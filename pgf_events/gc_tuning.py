"""Cycle collection during bulk work.

Replays, imports and verification allocate millions of small objects (events, records, rows)
that reference counting frees on its own. CPython 3.11 still runs a generation-0 cycle collection
every 700 allocations and a full one now and then, scanning every live object: a third of a
replay's time. Inside :func:`fewer_collections` the collector runs about a hundred times less often.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLD = 100_000


@contextmanager
def fewer_collections(threshold: int = BULK_THRESHOLD) -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(max(threshold, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def usable_cpus() -> int:
    """The cores this process may run on (its affinity: ``taskset``, a container's cpuset), which
    decides whether bulk work starts a second process; ``os.cpu_count()`` counts the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
