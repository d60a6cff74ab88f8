"""Ed25519 keys and signed statements: the two components of an electronic signature.

21 CFR 11.200(a): a signature not based on biometrics uses at least two distinct components.
Here they are *something you have* (the private key file, encrypted at rest) and *something you
know* (the passphrase that decrypts it). The public key is registered in the store's user
directory and approved by an admin, so anyone can check every signature offline.

A signed statement is canonical JSON (sorted keys, no spaces, UTF-8), so the same statement always
gives the same bytes; the signature is Ed25519 over those bytes, kept in base64.

The cryptography package is imported by the functions that use it: a command that neither signs nor
checks a signature does not pay for loading it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from pgf_events.domain.errors import ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ESIGN_SCHEME = "pgf-esign/1"
MIN_PASSPHRASE = 8


def canonical(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 bytes of SHA-256 over its raw bytes, in hex."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def generate(passphrase: str) -> tuple[bytes, str, str]:
    """A new key pair: (private key PEM encrypted with ``passphrase``, public key PEM, key id)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationError(f"the passphrase must be at least {MIN_PASSPHRASE} characters")
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

    private = Ed25519PrivateKey.generate()
    encrypted = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
    return encrypted, public_pem(private.public_key()), key_id(private.public_key())


def load_private(pem: bytes, passphrase: str, where: str = "the key file") -> Ed25519PrivateKey:
    """Decrypt a private key; a wrong passphrase (or a file that is not an encrypted Ed25519 key) is one clear error."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode("utf-8"))
    except TypeError:  # not encrypted: a key without its second component is refused
        raise ValidationError(f"{where} is not protected by a passphrase; make one with 'pgf keys generate'") from None
    except ValueError:
        raise ValidationError(f"the passphrase does not open {where} (wrong passphrase, or not a pgf key)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationError(f"{where} is not an Ed25519 key; make one with 'pgf keys generate'")
    return key


def load_public(pem: str | bytes, where: str = "the public key") -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: PLC0415

    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except ValueError:
        raise ValidationError(f"{where} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationError(f"{where} is not an Ed25519 public key")
    return key


def sign(private: Ed25519PrivateKey, statement: dict[str, Any]) -> str:
    return base64.b64encode(private.sign(canonical(statement))).decode("ascii")


def verifies(public: str | Ed25519PublicKey, statement: dict[str, Any], signature: str | None) -> bool:
    """Does ``signature`` (base64) verify over ``statement`` with this public key (PEM or key)?"""
    if not signature:
        return False
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    try:
        key = load_public(public) if isinstance(public, str | bytes) else public
        key.verify(base64.b64decode(signature, validate=True), canonical(statement))
    except (InvalidSignature, ValueError, ValidationError):
        return False
    return True


def esign_statement(*, stream: str, subject: str, stream_version: int, stream_hash: str, meaning: str,
                    signed_at: str, signer: str, key: str) -> dict[str, Any]:
    """What an e-signature signs: the stream's head (version and chain hash), the meaning, the time, who."""
    return {"scheme": ESIGN_SCHEME, "stream": stream, "subject": subject, "stream_version": stream_version,
            "stream_hash": stream_hash, "meaning": meaning, "signed_at": signed_at, "signer": signer, "key_id": key}
