"""ImportBatch and IdempotencyKey: proof that a file or a keyed command was recorded, saved with its records.

Saving the batch aggregate in the same transaction as the imported events makes ``pgf import``
idempotent: after a crash the store holds the whole file or none of it, and re-running the same
file finds the batch and writes nothing twice. A batch is keyed by the SHA-256 of the canonical
content of its commands (so line endings, blank lines and JSON whitespace do not make a new file);
batches imported before that were keyed by the file's bytes, and are still found that way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
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


# ---------------------------------------------------------------------------- idempotency keys

KEY_NAMESPACE = UUID("5d0f8a52-1c7e-4b8e-9a0e-6f3b2a1c4e77")


def key_id(key: str) -> UUID:
    return uuid5(KEY_NAMESPACE, key)


def canonical(obj: Any) -> str:
    """One text per meaning: sorted keys, no insignificant whitespace, dates as ISO text."""
    return _CANONICAL(obj)


# json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str), the encoder
# made once (json.dumps makes one per call with these options; an import digests every line)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8", "surrogatepass")).hexdigest()


class IdempotencyKey(Aggregate):
    """A ``--key`` (or an import line's ``"key"``) and what it recorded, saved with that record.

    A retry with the same key and the same command finds it and returns the original reference
    instead of recording the command twice; the same key with another command is refused.
    """

    class Event(Aggregate.Event):  # see Patient.Event
        pass

    class Used(Event, Aggregate.Created):
        key: str
        fingerprint: str  # of the command's canonical content
        ref: str
        kind: str
        recorded_by: str

    def __init__(self, key: str, fingerprint: str, ref: str, kind: str, recorded_by: str):
        self.key = key
        self.fingerprint = fingerprint
        self.ref = ref
        self.kind = kind
        self.recorded_by = recorded_by

    @classmethod
    def use(cls, key: str, fingerprint: str, ref: str, kind: str, recorded_by: str) -> IdempotencyKey:
        return cls._create(cls.Used, id=key_id(key), key=key, fingerprint=fingerprint, ref=ref, kind=kind,
                           recorded_by=recorded_by)
