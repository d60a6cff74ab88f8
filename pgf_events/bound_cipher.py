"""Encrypted payloads bound to their place: AES-GCM with the event's identity as associated data.

The library's ``AESCipher`` authenticates a payload but not *where* it is stored, so someone
without the key could copy one event's ciphertext over another's (and, on SQLite, relink the chain
over it). Here every new payload is sealed with associated data = stream id, version and topic, so a
ciphertext decrypts only in its own place: a swapped one fails on read and in ``pgf audit verify``.

Format marker: bound payloads start with :data:`MARKER`; payloads without it were written before
this change and are opened as before (the library's format). Stripping the marker from a bound
payload does not turn it into an old one: its tag covers the associated data, so it fails either way.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from eventsourcing.persistence import MapperDeserialisationError

from pgf_events.domain.errors import StoreError

MARKER = b"\xffpgf-ad1"  # 8 bytes; the library's format starts with a random 12-byte nonce
_CONTEXT = b"pgf-events/aead/1"


class MisplacedCiphertext(StoreError, MapperDeserialisationError):
    """An encrypted payload read anywhere but where it was written (one ``Error:`` line in the CLI)."""


def associated_data(originator_id: Any, version: int, topic: str) -> bytes:
    oid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
    return b"".join((_CONTEXT, oid.bytes, version.to_bytes(8, "big", signed=True), topic.encode("utf-8")))


def seal(cipher: Any, plaintext: bytes, originator_id: Any, version: int, topic: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415 - encrypted stores only

    nonce = os.urandom(12)
    return MARKER + nonce + AESGCM(cipher.key).encrypt(nonce, plaintext, associated_data(originator_id, version, topic))


def unseal(cipher: Any, data: bytes, originator_id: Any, version: int, topic: str) -> bytes:
    """The plaintext, if ``data`` was sealed for exactly this place (or is an old, unbound payload)."""
    if not data.startswith(MARKER):
        return bytes(cipher.decrypt(data))  # written before payloads were bound
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415 - encrypted stores only
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    nonce, sealed = data[len(MARKER):len(MARKER) + 12], data[len(MARKER) + 12:]
    try:
        return AESGCM(cipher.key).decrypt(nonce, sealed, associated_data(originator_id, version, topic))
    except InvalidTag:
        raise MisplacedCiphertext(
            f"the encrypted payload of stream {originator_id} version {version} does not belong there: it was "
            "altered or copied from another event behind the engine's back. Run 'pgf audit verify'") from None
