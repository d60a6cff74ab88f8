"""The tamper-evident chain: one SHA-256 link per stored event, in global log order.

Canonical encoding of link *n* (version 1 of the scheme), every field fixed-width or
length-prefixed so that no two different inputs encode alike::

    hash_n = SHA-256( hash_{n-1}                      32 bytes (GENESIS before the first event)
                    || originator id                  16 bytes (the stream's UUID)
                    || originator version             8 bytes, big-endian
                    || len(topic) || topic            4 bytes big-endian + UTF-8 (the event type)
                    || len(state) || state )          8 bytes big-endian + the stored bytes

On PostgreSQL (scheme ``pgf-chain/2``, from the position the store records as ``notary_from``)
the database computes each link itself and appends its own stamps to the material::

                    || len(recorded_by) || recorded_by  4 bytes big-endian + UTF-8 (session_user)
                    || recorded_at                     8 bytes big-endian, microseconds since 1970 UTC

(see :mod:`pgf_events.audit.pg_notary`; :func:`notary_suffix` is the same in Python).

``state`` is exactly the bytes the library stored: the event's payload *and* its recorded
timestamp (``timestamp`` inside the JSON), so changing a value, a date or the recorded time breaks
the link. The notification id (position) is stored beside each link but is not hashed: order is
carried by the chaining itself.

A checkpoint is the head written short, ``POSITION-HEX`` (the first 20 hex digits, 80 bits, of the
hash at that position); an auditor keeps it outside the database and later proves the log still
extends it (``pgf audit verify --checkpoint``).
"""

from __future__ import annotations

import hashlib
import re
import struct
from datetime import UTC, datetime
from uuid import UUID

import attrs

SCHEME = "pgf-chain/1"
NOTARY_SCHEME = "pgf-chain/2"  # scheme 1 + the database's recorded_by and recorded_at
GENESIS = hashlib.sha256(SCHEME.encode()).digest()
CHECKPOINT_HEX_DIGITS = 20
_VERSION_AND_TOPIC_LENGTH = struct.Struct(">qI")  # 8-byte signed version, 4-byte topic length
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHECKPOINT_RE = re.compile(r"^(?P<position>\d{1,19})-(?P<hex>[0-9a-f]{16,64})$")


def link_material(originator_id: UUID | bytes, version: int, topic: str | None, state: bytes | None) -> bytes:
    """Everything a link hashes after the previous hash (the encoding in the module docstring)."""
    oid = originator_id if isinstance(originator_id, bytes) else originator_id.bytes
    topic_bytes = (topic or "").encode("utf-8")
    state = state or b""
    return b"".join((
        oid, _VERSION_AND_TOPIC_LENGTH.pack(version, len(topic_bytes)), topic_bytes,
        len(state).to_bytes(8, "big"), state,
    ))


def link_hash(previous: bytes, originator_id: UUID | bytes, version: int, topic: str | None,
              state: bytes | None) -> bytes:
    """One link; ``originator_id`` as a UUID or its 16 raw bytes."""
    return hashlib.sha256(previous + link_material(originator_id, version, topic, state)).digest()


def notary_suffix(recorded_by: str, recorded_at: datetime) -> bytes:
    """What scheme 2 appends to a link's material: the database's stamps."""
    by = recorded_by.encode("utf-8")
    delta = recorded_at - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return len(by).to_bytes(4, "big") + by + micros.to_bytes(8, "big", signed=True)


def material_identity(material: bytes) -> tuple[UUID, int]:
    """The stream id and version at the start of a link's material."""
    return UUID(bytes=material[:16]), int.from_bytes(material[16:24], "big", signed=True)


def stream_hash(events: list[tuple[UUID, int, str, bytes]]) -> bytes:
    """The same chaining over one stream's events only (what a signature binds)."""
    h = GENESIS
    for originator_id, version, topic, state in events:
        h = link_hash(h, originator_id, version, topic, state)
    return h


@attrs.frozen
class Checkpoint:
    position: int
    hex_prefix: str

    @classmethod
    def of(cls, position: int, digest: bytes) -> Checkpoint:
        return cls(position, digest.hex()[:CHECKPOINT_HEX_DIGITS])

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        match = _CHECKPOINT_RE.match(text.strip().lower())
        if not match:
            raise ValueError(
                f"checkpoint {text!r} must look like 1234-0123456789abcdef0123 (as printed by pgf audit checkpoint)"
            )
        return cls(int(match["position"]), match["hex"])

    def matches(self, digest: bytes) -> bool:
        return digest.hex().startswith(self.hex_prefix)

    def __str__(self) -> str:
        return f"{self.position}-{self.hex_prefix}"
