"""Signed checkpoints: statements of the chain head, signed with the signer's Ed25519 key, kept outside.

``pgf audit checkpoint`` verifies the chain first (a checkpoint of a broken log would vouch for
the break), then emits one statement, canonical JSON::

    {"scheme": "pgf-checkpoint/1", "store": <hash of the store's first link>, "store_url": ...,
     "position": N, "chain_hash": <hash of the chain at N>, "events": <events up to N>,
     "database_time": <the database's clock>, "signer": <user>, "key_id": <registered key>}

signed with the signer's key (registered and approved in the user directory, as for e-signatures),
written as one JSON line ``{"statement": ..., "signature": ...}`` and, with ``--append-to FILE``,
appended to a file kept outside the database (another machine, a WORM share, an e-mail).

``pgf audit verify --checkpoint FILE`` checks every statement in the file: its signature with the
public key registered for its signer, then that the log still extends it: the chain verifies and
its link at the statement's position is the statement's hash. An attacker who rewrites the store
and rebuilds a consistent chain (or who edits a statement) is caught, naming the statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pgf_events.audit.verify import ChainReader, Verification
from pgf_events.domain import esign
from pgf_events.domain.errors import RuleViolation, StoreError
from pgf_events.domain.users import UserDirectory

SCHEME = "pgf-checkpoint/1"
FIELDS = ("scheme", "store", "store_url", "position", "chain_hash", "events", "database_time", "signer", "key_id")


def database_time(app: Any) -> datetime:
    """The database's clock: ``now()`` on PostgreSQL; an embedded SQLite store's clock is this process's."""
    if app.store.backend == "postgresql":
        with app.recorder.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT now() AS t")
            row = curs.fetchone()
            value = row["t"] if isinstance(row, dict) else row[0]
            return value.astimezone(UTC)  # type: ignore[no-any-return]
    return datetime.now(UTC)


def store_identity(reader: ChainReader) -> str:
    """The store's first chain link (hex): it names the store as long as its first event is unaltered."""
    first = reader.link_rows(0, reader.max_position(), 1)
    return bytes(first[0][1]).hex() if first else ""


def take(app: Any, reader: ChainReader, verification: Verification, *, user: str,
         private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A signed statement of the verified chain head (the caller verified the chain first)."""
    if not verification.ok:
        raise StoreError("the chain is broken; a checkpoint would vouch for the break (see pgf audit verify)")
    if verification.head is None:
        raise StoreError("the store holds no events yet, so there is no chain head to checkpoint")
    key_id = esign.key_id(private_key.public_key())
    directory: UserDirectory | None = app.directory()
    if directory is None or key_id not in directory.keys:
        raise RuleViolation(f"key {key_id} is not registered in this store's user directory "
                            "(pgf keys register, then an admin approves it)")
    directory.signing_key(key_id, user)
    statement = {
        "scheme": SCHEME, "store": store_identity(reader), "store_url": app.store.display,
        "position": verification.head.position, "chain_hash": verification.head.hash.hex(),
        "events": verification.events, "database_time": database_time(app).isoformat().replace("+00:00", "Z"),
        "signer": user, "key_id": key_id,
    }
    return {"statement": statement, "signature": esign.sign(private_key, statement)}


@attrs.frozen
class StatementCheck:
    number: int  # 1-based, in file order
    statement: dict[str, Any] | None
    ok: bool
    detail: str

    @property
    def name(self) -> str:
        s = self.statement
        if not s:
            return f"statement {self.number}"
        return f"statement {self.number} (position {s.get('position')}, signed by {s.get('signer')} at " \
               f"{s.get('database_time')})"

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "ok": self.ok, "detail": self.detail,
                **{k: (self.statement or {}).get(k) for k in ("position", "signer", "database_time", "key_id")}}


def parse(lines: Iterable[str]) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    """(number, statement, signature) per non-empty line; statement None where the line is not one."""
    out: list[tuple[int, dict[str, Any] | None, str | None]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            statement, signature = doc["statement"], doc["signature"]
            if not isinstance(statement, dict) or set(statement) != set(FIELDS) or statement["scheme"] != SCHEME:
                raise ValueError
            int(statement["position"])
        except (ValueError, KeyError, TypeError):
            out.append((len(out) + 1, None, None))
            continue
        out.append((len(out) + 1, statement, str(signature)))
    return out


def check(app: Any, reader: ChainReader, verification: Verification,
          statements: list[tuple[int, dict[str, Any] | None, str | None]]) -> list[StatementCheck]:
    """Check each statement's signature, then that the (verified) log extends it."""
    directory: UserDirectory | None = app.directory()
    broken = verification.broken
    good_until = broken.position - 1 if broken else verification.last_position
    here = store_identity(reader)
    out = []
    for number, statement, signature in statements:
        if statement is None:
            out.append(StatementCheck(number, None, False, "this line is not a pgf checkpoint statement"))
            continue
        problem = _signature_problem(statement, signature, directory)
        if problem is None:
            problem = _extension_problem(reader, statement, good_until, broken is not None, here)
        out.append(StatementCheck(number, statement, problem is None, problem or "signed, and the log extends it"))
    return out


def _signature_problem(statement: dict[str, Any], signature: str | None, directory: UserDirectory | None) -> str | None:
    key_id, signer = str(statement["key_id"]), str(statement["signer"])
    key = directory.keys.get(key_id) if directory is not None else None
    if key is None:
        return f"it is signed with key {key_id}, which is not registered in this store: it was forged"
    if key.user != signer:
        return f"it names {signer} as signer but key {key_id} belongs to {key.user}: it was forged"
    if not key.approved_by:
        return f"key {key_id} of {signer} was never approved by an admin"
    if not esign.verifies(key.public_key, statement, signature):
        return "its signature does not verify: the statement was forged or edited"
    return None


def _extension_problem(reader: ChainReader, statement: dict[str, Any], good_until: int, broken: bool,
                       here: str) -> str | None:
    position = int(statement["position"])
    if position > good_until:
        if broken:
            return f"the chain is broken at position {good_until + 1}, before this statement's position, so the " \
                   "log no longer extends it"
        return f"the log ends at position {good_until}, before this statement's position: events were removed " \
               "after the checkpoint"
    link = reader.link_rows(position - 1, position, 1)
    if not link or link[0][0] != position:
        return f"the log has no event at position {position}: events were removed after the checkpoint"
    if bytes(link[0][1]).hex() != statement["chain_hash"]:
        other = "" if statement["store"] == here else " (or the statement is from another store)"
        return (f"the log at position {position} no longer matches it: the store was rewritten after the "
                f"checkpoint{other}")
    return None
