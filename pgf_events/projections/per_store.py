"""In-memory models kept beside a projection store, one per store in a process."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from pgf_events.projections.store import ProjectionStore


_T = TypeVar("_T")


class PerStore(Generic[_T]):
    """One ``make(store)`` per :class:`ProjectionStore` in this process, made on first use and gone
    with the store: the in-memory models a server keeps beside a store's read models (the snapshot
    of its rows, the worklist's and the audit page's models)."""

    def __init__(self, make: Callable[[ProjectionStore], _T]):
        self._make = make
        self._made: weakref.WeakKeyDictionary[ProjectionStore, _T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, store: ProjectionStore) -> _T:
        with self._lock:
            found = self._made.get(store)
            if found is None:
                found = self._made[store] = self._make(store)
            return found
