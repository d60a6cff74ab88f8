"""The database lock: one store-level aggregate whose events lock and unlock the whole store.

``pgf lock --reason`` (for analysis) records ``Locked`` with the signed chain checkpoint taken at
that moment (the JSON statement ``pgf audit checkpoint`` prints: position, chain hash, signer, key,
signature), so the analysed data can later be proved unchanged (``pgf audit verify --checkpoint``). While locked every write
to a patient (records, corrections, voids, signatures, queries, verifications, freezes) is refused
with a message naming the lock; ``pgf unlock --reason`` (admins only) lifts it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from pgf_events.domain.errors import RuleViolation
from pgf_events.domain.parsing import parse_text

LOCK_ID = uuid5(UUID("0c9e3f5a-77b1-4d2e-a6f8-5b4c3d2e1f10"), "pgf-database-lock")


class StoreLock(Aggregate):
    class Event(Aggregate.Event):  # see Patient.Event
        pass

    class Created(Event, Aggregate.Created):
        pass

    class Locked(Event):
        reason: str
        by: str
        checkpoint: str

        def apply(self, lock: StoreLock) -> None:
            lock.locked = (self.by, self.timestamp, self.reason, self.checkpoint)

    class Unlocked(Event):
        reason: str
        by: str

        def apply(self, lock: StoreLock) -> None:
            lock.locked = None

    def __init__(self) -> None:
        self.locked: tuple[str, datetime, str, str] | None = None

    @classmethod
    def create(cls) -> StoreLock:
        return cls._create(cls.Created, id=LOCK_ID)

    def lock(self, reason: str, by: str, checkpoint: str) -> None:
        reason = parse_text(reason, "reason", 500)
        if self.locked is not None:
            raise RuleViolation(f"the database is already locked ({self.note()})")
        self.trigger_event(self.Locked, reason=reason, by=by, checkpoint=checkpoint)

    def unlock(self, reason: str, by: str) -> None:
        reason = parse_text(reason, "reason", 500)
        if self.locked is None:
            raise RuleViolation("the database is not locked")
        self.trigger_event(self.Unlocked, reason=reason, by=by)

    def note(self) -> str:
        assert self.locked is not None
        by, at, reason, _ = self.locked
        return f"locked by {by} on {at:%Y-%m-%d %H:%M}Z: {reason}"

    def check_writable(self) -> None:
        if self.locked is not None:
            raise RuleViolation(f"the database is locked for analysis ({self.note()}); an admin must "
                                "'pgf unlock --reason ...' before anything is written")
