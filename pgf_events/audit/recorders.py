"""Application recorders that chain every event in the same transaction that stores it.

``store.py`` selects these classes through the library's ``APPLICATION_RECORDER_TOPIC`` setting.
Inserting events also appends one link per event to ``pgf_chain`` (position = notification id,
see :mod:`pgf_events.audit.chain`) and moves the one-row ``pgf_chain_head`` forward, all before the
commit: an event is never stored without its link, and the head always names the latest link, so
dropping the latest events is caught too.

The database enforces append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)
on the events table and on ``pgf_chain``; the head accepts only an UPDATE that moves it forward.

A store records at creation that it is chained: an empty head (position 0) and ``pgf_store``
rows (``chain`` = the scheme). Nothing is ever linked after the fact and verify never repairs: a
missing head or chain refuses writes and fails verification. A store from before the chain
(events, but no head, no links, no marker) is linked only by the explicit, logged admin command
``pgf db upgrade`` (:meth:`ChainWriter.upgrade`), which marks those links ``backfilled`` and
records who upgraded it and when: a backfilled link proves the log has not changed *since the
upgrade*, not before it, and ``pgf audit verify`` says so.

The PostgreSQL recorder lives in :mod:`pgf_events.audit.recorders_postgres`, so that a SQLite
store never imports psycopg (a third of a `pgf record` process's start-up).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from eventsourcing.persistence import (
    StoredEvent,
)

from pgf_events.audit.chain import GENESIS, link_hash
from pgf_events.domain.errors import StoreError

BATCH = 5000

# (position, originator id, version, topic, state) and (position, originator id, version, hash, backfilled)
# Stream ids travel as their 16 raw bytes (cheap to hash and compare; UUID(bytes=...) to show).
StoredRow = tuple[int, bytes, int, str, bytes]  # position, stream id, version, topic, state
LinkRow = tuple[int, bytes, int, bytes, bool]  # position, stream id, version, hash, backfilled
# What verification streams: (position, link material) and (position, hash, backfilled).
EventRow = tuple[int, bytes]
StoredLink = tuple[int, bytes, bool]


class Head(NamedTuple):
    position: int
    hash: bytes
    originator_id: UUID
    originator_version: int


_UNREADABLE = UUID("00000000-0000-0000-0000-00000000bad0")


def _uuid(value: Any) -> UUID:
    """A stream id as stored; a value that is no UUID at all (tampered) maps to one that links nothing."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        return uuid5(_UNREADABLE, repr(value))


def _oid(value: Any) -> bytes:
    """A stored stream id (UUID, or the 32 hex digits SQLite keeps) as 16 raw bytes."""
    if isinstance(value, str) and len(value) == 32:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return _uuid(value).bytes


def _bytes(value: Any) -> bytes:
    """Stored state as bytes, even if someone rewrote the column with text."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value) if value is not None else b""


class ChainWriter(ABC):
    """The chaining logic both backends share; subclasses supply the SQL."""

    # --- backend SQL (each backend's recorder implements these)
    @abstractmethod
    def _lock_writers(self, c: Any) -> None:
        """Take the lock that serialises writers, inside the transaction of ``c``."""

    @abstractmethod
    def _has_events(self, c: Any) -> bool: ...

    @abstractmethod
    def _read_head(self, c: Any) -> tuple[int, bytes] | None: ...

    @abstractmethod
    def _events_after(self, c: Any, after: int, before: int | None, limit: int) -> list[StoredRow]: ...

    @abstractmethod
    def _insert_links(self, c: Any, links: list[LinkRow]) -> None: ...

    @abstractmethod
    def _write_head(self, c: Any, link: LinkRow, times: tuple[datetime, datetime] | None = None) -> None:
        """Move the head to ``link``; ``times``: the new events' (earliest, latest) recorded time, if known."""

    @abstractmethod
    def _has_links(self, c: Any) -> bool: ...

    @abstractmethod
    def _write_meta(self, c: Any, rows: list[tuple[str, str]]) -> None: ...

    @abstractmethod
    def _meta_value(self, c: Any, key: str) -> str | None: ...

    # --- shared
    def upgrade(self, by: str, now: str) -> int | None:
        """``pgf db upgrade``: link a store from before the chain (no head, no links, some events).

        Returns how many events were linked (None if the store was already chained). Refused when
        links or a marker exist without a head: that is tampering, not an old store.
        """
        with self.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            self._lock_writers(c)
            if self._read_head(c) is not None:
                return None
            position, _ = self._upgrade(c)
            self._write_meta(c, [("chain", self.chain_scheme), ("upgraded_at", now), ("upgraded_by", by),
                                 ("backfilled_to", str(position))])
            return position

    chain_scheme = "pgf-chain/1"

    def _append_links(self, c: Any, ids: Sequence[int], stored_events: Sequence[StoredEvent],
                      times: tuple[datetime, datetime] | None = None) -> None:
        """Link newly inserted events (same transaction, writers serialised by the caller's lock).

        Only the new events are linked: an event someone slipped in without a link stays unlinked,
        so ``pgf audit verify`` keeps reporting it. The one exception is a store that has no chain
        at all (from before this feature), which is linked from its first event.
        """
        new = sorted(zip(ids, stored_events, strict=True), key=lambda pair: pair[0])
        if not new:
            return
        head = self._read_head(c)
        # Whether events precede the new ones: only asked when there is no head (a store with a chain
        # has one; a read less at every save).
        older = head is None and bool(self._events_after(c, 0, new[0][0], 1))
        if head is None and not older and not self._has_links(c) and self._meta_value(c, "chain") is None:
            head = (0, GENESIS)  # an empty store made by an older pgf: its first event starts the chain
            self._write_meta(c, [("chain", self.chain_scheme)])
        if head is None:
            if self._has_links(c) or self._meta_value(c, "chain") is not None or not older:
                raise StoreError("the chain head is missing: it was removed behind the engine's back; "
                                 "nothing was written. Run 'pgf audit verify'")
            raise StoreError("this store has no tamper-evident chain (it predates it, or the chain was removed); "
                             "nothing was written. An admin may chain it with 'pgf db upgrade' (logged)")
        else:
            position, digest = head
            if new[0][0] <= position:
                raise StoreError(
                    f"the event log ends before its chain head (position {position}): events were removed "
                    "behind the engine's back; nothing was written. Run 'pgf audit verify'"
                )
        links: list[LinkRow] = []
        oids: dict[Any, bytes] = {}  # a save holds a few streams' events: convert each stream id once
        for notification_id, s in new:
            originator_id = oids.get(s.originator_id)
            if originator_id is None:
                originator_id = oids[s.originator_id] = _uuid(s.originator_id).bytes
            digest = link_hash(digest, originator_id, s.originator_version, s.topic, s.state)
            links.append((notification_id, originator_id, s.originator_version, digest, False))
        self._insert_links(c, links)
        self._write_head(c, links[-1], times)

    def _upgrade(self, c: Any, before: int | None = None) -> tuple[int, bytes]:
        """Link every stored event of a store that has no chain yet (one transaction, streamed).

        Refused when links exist without a head: the head was removed behind the engine's back,
        and rebuilding over it would hide that.
        """
        if self._has_links(c):
            raise StoreError(
                "the chain head is missing but chain links exist: it was removed behind the engine's back; "
                "nothing was written. Run 'pgf audit verify'"
            )
        position, digest = 0, GENESIS
        while True:
            rows = self._events_after(c, position, before, BATCH)
            if not rows:
                return position, digest
            links: list[LinkRow] = []
            for notification_id, originator_id, version, topic, state in rows:
                digest = link_hash(digest, originator_id, version, topic, state)
                links.append((notification_id, originator_id, version, digest, True))
            self._insert_links(c, links)
            position = links[-1][0]
            self._write_head(c, links[-1])
