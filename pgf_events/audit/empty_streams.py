"""Streams ``pgf shell`` found empty, or read to their last event, answered without a read.

Every record checks the store's lock, the user directory (the acting user's role) and the patient's
review: three streams that are usually empty, each read in its own transaction. A SQLite recorder
with ``empty_streams`` set remembers the streams a whole-stream read found empty, and answers any
read of them with no events until the store may have changed:

- another connection (another process, or another connection of this one) committed to the file:
  ``PRAGMA data_version`` on the connection asked, which SQLite changes exactly then, is no longer the
  value the streams were found empty at (or the pool gave another connection): everything is forgotten;
- this process inserts events into one of them (``forget_empty``, called by the recorder's insert):
  that stream is forgotten (this process's own commits leave ``data_version`` as it was).

Events are never deleted (the append-only triggers), so a stream found non-empty is never remembered
as empty. Likewise the shell knows the last version of the streams it read to the end or wrote (a
patient it records for): a read of what follows that version (the unit of work's check that the kept
patient is up to date) is answered with no events, until the store may have changed as above. This
process's own inserts forget a stream's last version, and a committed :meth:`insert_events` that
continues a known (or empty) stream with the next versions learns the new one.
Only for a process that reads and writes on one thread (the shell): with two threads, one could find a
stream empty just before the other's insert commits on the same connection (which leaves its
``data_version`` as it was).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID


class EmptyStreams:
    """Mixin of the SQLite recorder; ``empty_streams`` None (the default): every read goes to the store."""

    datastore: Any
    empty_streams: set[str] | None = None
    _empty_as_of: tuple[Any, int] | None = None  # (connection, its data_version) the set holds at
    _last_versions: dict[str, int] | None = None  # stream -> its last version, as of _empty_as_of too

    def forget_empty(self, stream_ids: Iterable[str]) -> None:
        """Streams this process is inserting events into (their ids as stored, 32 hex digits)."""
        kept, last = self.empty_streams, self._last_versions
        if kept or last:
            keys = {_key(i) for i in stream_ids}
            if None in keys:
                self._forget_all()
                return
            if kept:
                kept.difference_update(keys)
            if last:
                for k in keys:
                    last.pop(k, None)  # type: ignore[arg-type]

    def _forget_all(self) -> None:
        if self.empty_streams is not None:
            self.empty_streams.clear()
        self._last_versions = {} if self.empty_streams is not None else None

    def insert_events(self, stored_events: Sequence[Any], **kwargs: Any) -> Any:
        """The library's insert (committed when it returns); then the streams it continued from a known
        last version (or from empty) with the next versions have a new known last version."""
        if self.empty_streams is None:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        held, kept = self._empty_as_of, self.empty_streams
        last = self._last_versions if self._last_versions is not None else {}
        versions: dict[str | None, list[int]] = {}
        for s in stored_events:
            versions.setdefault(_key(s.originator_id), []).append(s.originator_version)
        before = {k: (0 if k in kept else last.get(k)) for k in versions if k is not None}
        ids = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        if held is not None and self._empty_as_of is held and self.empty_streams is kept and None not in versions:
            now = self._last_versions if self._last_versions is not None else {}
            for k, vs in versions.items():
                assert k is not None
                if before[k] is not None and sorted(vs) == list(range(before[k] + 1, before[k] + 1 + len(vs))):  # type: ignore[operator]
                    now[k] = before[k] + len(vs)  # type: ignore[operator]
            self._last_versions = now
        return ids

    def _data_version(self) -> tuple[Any, int]:
        held = self._empty_as_of
        if held is not None:  # asked of the same connection directly (one thread: nobody else uses it now)
            try:
                return held[0], int(held[0].execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:  # closed by the pool meanwhile: take one from the pool
                pass
        with self.datastore.get_connection(commit=False) as conn:
            raw = conn._sqlite_conn  # noqa: SLF001 - the library keeps the sqlite3 connection there
            return raw, int(raw.execute("PRAGMA data_version").fetchone()[0])

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[Any]:
        kept = self.empty_streams
        if kept is None:
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)  # type: ignore[misc,no-any-return]
        key = _key(originator_id)
        if key is None:
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)  # type: ignore[misc,no-any-return]
        as_of = self._data_version()
        held = self._empty_as_of
        if held is None or held[0] is not as_of[0] or held[1] != as_of[1]:
            self._forget_all()
            self._empty_as_of = held = as_of
        if key in kept:
            return []
        last = self._last_versions
        if gt is not None and last and last.get(key, gt + 1) <= gt:
            return []  # nothing after the last version known as of as_of
        found = super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)  # type: ignore[misc]
        if self._empty_as_of is held and lte is None and not desc and limit is None:
            if found:  # read to the end as of as_of (read after it): a commit since changes data_version
                if last is None:
                    last = self._last_versions = {}
                last[key] = found[-1].originator_version
            elif gt is None:
                kept.add(key)  # empty as of as_of (read after it): a commit since changes data_version
        return found  # type: ignore[no-any-return]


def _key(stream_id: UUID | str) -> str | None:
    """A stream id as the table stores it (32 hex digits); None if it is no UUID."""
    if isinstance(stream_id, UUID):
        return stream_id.hex
    try:
        return UUID(str(stream_id)).hex
    except ValueError:
        return None
