"""ImportBatch: proof that a file was imported, keyed by its SHA-256, saved with its records.

Saving the batch aggregate in the same transaction as the imported events makes ``pgf import``
idempotent: after a crash the store holds the whole file or none of it, and re-running the same
file finds the batch and writes nothing twice.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

IMPORT_NAMESPACE = UUID("0b7c4b1e-93a4-4f1d-8a57-3c1f7e2d9a61")


def import_id(digest: str) -> UUID:
    return uuid5(IMPORT_NAMESPACE, digest)


class ImportBatch(Aggregate):
    class Event(Aggregate.Event):  # see Patient.Event
        pass

    class Imported(Event, Aggregate.Created):
        digest: str
        file_name: str
        lines: int
        records: int
        recorded_by: str

    def __init__(self, digest: str, file_name: str, lines: int, records: int, recorded_by: str):
        self.digest = digest
        self.file_name = file_name
        self.lines = lines
        self.records = records
        self.recorded_by = recorded_by

    @classmethod
    def record(cls, digest: str, file_name: str, lines: int, records: int, recorded_by: str) -> ImportBatch:
        return cls._create(cls.Imported, id=import_id(digest), digest=digest, file_name=file_name,
                           lines=lines, records=records, recorded_by=recorded_by)
