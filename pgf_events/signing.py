"""Use cases of electronic signatures (application layer, mixed into :class:`TrialConduct`).

- ``register_key``: a user registers their own Ed25519 public key in the user directory;
- ``approve_key`` / ``revoke_key``: an admin (not the key's owner) approves or revokes it;
- ``sign``: an investigator signs a patient's stream head, a meaning and the time with their
  private key (decrypted by the caller with its passphrase: the two components).

Every check runs before anything is written: a key that is not registered, not approved, revoked,
or registered to another user is one clear error and the store is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from pgf_events.audit.chain import stream_hash
from pgf_events.domain import esign
from pgf_events.domain.errors import RuleViolation, ValidationError
from pgf_events.domain.parsing import parse_text
from pgf_events.retry import MAX_ATTEMPTS, retry

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pgf_events.domain.patient import Patient
    from pgf_events.domain.users import UserDirectory

# The patient domain and the user directory are imported by the use cases that need them: the
# application mixes these methods in, and ``pgf audit verify`` never loads a patient.

def stream_digest(app: Any, originator_id: UUID, version: int) -> str:
    """The chain hash (hex) over one patient's stored events 1..version, exactly as stored."""
    stored = app.recorder.select_events(originator_id, lte=version)
    return stream_hash([
        (s.originator_id if isinstance(s.originator_id, UUID) else UUID(str(s.originator_id)),
         s.originator_version, s.topic, s.state)
        for s in stored
    ]).hex()


def signed_statement(event: Any, subject: str) -> dict[str, Any]:
    """The statement a stored ``Signed`` event's signature covers, rebuilt from the event."""
    return esign.esign_statement(
        stream=str(event.originator_id), subject=subject, stream_version=event.stream_version,
        stream_hash=event.stream_hash, meaning=event.meaning, signed_at=event.signed_at.isoformat(),
        signer=event.recorded_by, key=event.key_id or "",
    )


class SigningUseCases:
    """Methods of :class:`TrialConduct` for keys and signatures (``self`` is the application)."""

    def register_key(self: Any, public_pem: str, *, user: str, by: str | None = None,
                     reason: str | None = None) -> str:
        """Register ``user``'s public key (``by`` an admin, or the user); returns its key id. It signs
        nothing until approved."""
        key = esign.load_public(public_pem)
        key_id = esign.key_id(key)
        pem = esign.public_pem(key)
        self._change_directory(lambda d: d.register_key(user, key_id, pem, reason, by=by), by or user)
        return key_id

    def approve_key(self: Any, key_id: str, *, by: str, reason: str | None = None) -> UserDirectory:
        return self._change_directory(lambda d: d.approve_key(_key_id(key_id), by, reason), by)

    def revoke_key(self: Any, key_id: str, *, by: str, reason: str | None = None) -> UserDirectory:
        return self._change_directory(lambda d: d.revoke_key(_key_id(key_id), by, reason), by)

    def _change_directory(self: Any, change: Callable[[UserDirectory], None], by: str) -> UserDirectory:
        by = parse_text(by, "user", 64)
        from pgf_events import topics  # noqa: F401, PLC0415 - stored names registered before the directory is made
        from pgf_events.domain.users import UserDirectory  # noqa: PLC0415

        def attempt() -> UserDirectory:
            directory = self.directory() or UserDirectory.open(by)
            change(directory)
            self.save(directory)
            return directory

        return retry(attempt, on=(IntegrityError,),
                     failure=lambda e: "could not save the change to the user directory; try again")

    def sign(self: Any, subject: str, meaning: str, *, user: str, private_key: Ed25519PrivateKey,
             source: str | None = None) -> dict[str, Any]:
        """Sign the patient's stream as it stands with ``user``'s approved key; re-read and retry if
        someone writes first. Returns what was signed, with the new event's reference."""
        from pgf_events.domain.patient import SIGN, SIGNATURE_MEANINGS, Context  # noqa: PLC0415

        try:
            user = parse_text(user, "user", 64)
        except ValidationError:
            raise ValidationError("--user (or PGF_USER) must name who is signing") from None
        if meaning not in SIGNATURE_MEANINGS:
            raise ValidationError(f"--meaning must be one of {', '.join(SIGNATURE_MEANINGS)}, not {meaning!r}")
        if source is not None:
            source = parse_text(source, "source", 200)
        key_id = esign.key_id(private_key.public_key())
        from pgf_events.guards import check_not_locked  # noqa: PLC0415 - guards loads the review aggregate

        def attempt() -> dict[str, Any]:
            check_not_locked(self)
            directory = self.directory()
            if directory is None or key_id not in directory.keys:
                raise RuleViolation(f"key {key_id} is not registered in this store's user directory "
                                    "(pgf keys register, then an admin approves it)")
            directory.signing_key(key_id, user)
            patient: Patient = self.patient(subject)
            digest = stream_digest(self, patient.id, patient.version)
            now: datetime = self.clock()
            statement = esign.esign_statement(
                stream=str(patient.id), subject=patient.subject, stream_version=patient.version, stream_hash=digest,
                meaning=meaning, signed_at=now.isoformat(), signer=user, key=key_id,
            )
            signature = esign.sign(private_key, statement)
            ctx = Context(recorded_by=user, now=now, protocol=self.protocol, source=source)
            patient.sign(meaning, digest, ctx, key_id=key_id, signature=signature)
            self.save(patient)
            return {
                "ref": patient.ref(patient.version), "subject": patient.subject, "kind": SIGN, "signer": user,
                "meaning": meaning, "signed_at": now, "stream_version": patient.version - 1, "stream_hash": digest,
                "key_id": key_id, "signature": signature,
            }

        return retry(attempt, on=(IntegrityError,), failure=lambda e: (
            f"could not sign after {MAX_ATTEMPTS} attempts because others kept writing to {subject}; "
            "nothing was written"))


def _key_id(text: str) -> str:
    key_id = text.strip().lower()
    if len(key_id) != 32 or any(c not in "0123456789abcdef" for c in key_id):
        raise ValidationError(f"key id {text!r} must be 32 hex digits (as printed by pgf keys generate/list)")
    return key_id
