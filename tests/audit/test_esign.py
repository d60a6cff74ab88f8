"""Attacks on e-signatures with two components (key file + passphrase), on SQLite and PostgreSQL.

Each rejected attempt is one ``Error:`` line with nothing written (``Pgf.rejected`` compares the
store's fingerprint before and after).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgf_events.application import TrialConduct
from pgf_events.domain.users import DIRECTORY_ID
from tests.audit.attacker import Attacker
from tests.audit.keys import ADMIN, PASSPHRASE, CliSigner
from tests.conftest import REGISTER, Pgf
from tests.helpers import enrolled


@pytest.fixture
def patient(pgf_any: Pgf) -> Pgf:
    pgf_any.ok("record", "register", "S001", *REGISTER)
    return pgf_any


def _listed(pgf: Pgf) -> list[tuple[str, str, bool]]:
    rows = json.loads(pgf.ok("audit", "signatures", "--json").stdout)
    return [(r["ref"], r["signature"], r["valid"]) for r in rows]


def test_sign_asks_for_the_passphrase_without_echo_and_verifies_offline(patient: Pgf, tmp_path: Path) -> None:
    wang = CliSigner(patient, tmp_path, "dr.wang")
    result = patient.ok("sign", "S001", "--meaning", "approval", "--key", str(wang.key), "--json",
                        user="dr.wang", input=PASSPHRASE + "\n")
    assert PASSPHRASE not in result.stdout + result.stderr  # hidden input: never echoed
    assert "Passphrase for" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["ref"] == "S001#2" and doc["key_id"] == wang.key_id and doc["signer"] == "dr.wang"
    assert _listed(patient) == [("S001#2", "verified", True)]
    patient.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4")
    assert _listed(patient) == [("S001#2", "verified", False)]  # still genuine, invalidated by the later event
    keys = json.loads(patient.ok("keys", "list", "--json").stdout)["keys"]
    assert keys == [{"user": "dr.wang", "key_id": wang.key_id, "approved_by": ADMIN, "revoked_by": None,
                     "usable": True}]


def test_a_wrong_passphrase_writes_nothing(patient: Pgf, tmp_path: Path) -> None:
    wang = CliSigner(patient, tmp_path, "dr.wang")
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the passphrase\n")
    wang.rejected("S001", "--meaning", "review", passphrase=wrong, contains="the passphrase does not open")


def test_a_key_not_registered_or_not_approved_writes_nothing(patient: Pgf, tmp_path: Path) -> None:
    stranger = CliSigner(patient, tmp_path, "dr.li", register=False)
    stranger.rejected("S001", "--meaning", "review", contains="is not registered in this store")
    pending = CliSigner(patient, tmp_path, "dr.zhao", approve=False)
    pending.rejected("S001", "--meaning", "review", contains="not yet approved by an admin")
    patient.rejected("keys", "approve", "dr.zhao", pending.key_id, user="dr.zhao", contains="cannot approve their own")
    pending.approve()
    pending.sign("S001", "--meaning", "review")
    patient.ok("keys", "revoke", "dr.zhao", pending.key_id, "--reason", "left the site", user=ADMIN)
    pending.rejected("S001", "--meaning", "review", contains="was revoked")
    assert _listed(patient) == [("S001#2", "verified", True)]  # signed before the revocation: still genuine


def test_signing_with_someone_elses_key_writes_nothing(patient: Pgf, tmp_path: Path) -> None:
    wang = CliSigner(patient, tmp_path, "dr.wang")
    CliSigner(patient, tmp_path, "dr.li")
    # dr.li got hold of dr.wang's key file and passphrase: the key is not hers.
    wang.rejected("S001", "--meaning", "approval", user="dr.li", contains=f"key {wang.key_id} belongs to dr.wang")
    patient.rejected("keys", "register", f"{wang.key}.pub", user="dr.li", contains="already registered")


def test_an_unencrypted_key_is_refused(patient: Pgf, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    bare = tmp_path / "bare.pem"
    bare.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    wang = CliSigner(patient, tmp_path, "dr.wang")
    wang.rejected("S001", "--meaning", "review", key=bare, contains="not protected by a passphrase")


@pytest.mark.parametrize("field,old,new", [("meaning", b'"review"', b'"approval"'),
                                           ("signature", b'"signature":"', b'"signature":"A')])
def test_a_tampered_signature_row_fails_offline_verification(patient: Pgf, tmp_path: Path, field: str,
                                                             old: bytes, new: bytes) -> None:
    CliSigner(patient, tmp_path, "dr.wang").sign("S001", "--meaning", "review")
    db = Attacker(patient.url)
    try:
        db.drop_triggers()
        position = db.position_of(("S001", 2))
        state = db.state(position)
        assert old in state, (field, state)
        db.set_state(position, state.replace(old, new, 1))
    finally:
        db.close()
    assert _listed(patient) == [("S001#2", "INVALID", True)]
    assert patient("audit", "verify").exit_code == 1  # and the chain names the edited event


def test_a_signature_made_before_keys_displays_as_legacy(patient: Pgf, tmp_path: Path) -> None:
    CliSigner(patient, tmp_path, "dr.wang").sign("S001", "--meaning", "review")
    db = Attacker(patient.url)
    try:  # rewrite the row as the version-1 event stores written before keys held it
        db.drop_triggers()
        position = db.position_of(("S001", 2))
        doc = json.loads(db.state(position))
        for key in ("class_version", "key_id", "signature"):
            doc.pop(key)
        db.set_state(position, json.dumps(doc, separators=(",", ":")).encode())
    finally:
        db.close()
    rows = json.loads(patient.ok("audit", "signatures", "S001", "--json").stdout)
    assert [(r["ref"], r["signature"], r["key_id"], r["meaning"]) for r in rows] == [
        ("S001#2", "legacy", None, "review")]
    assert "legacy" in patient.ok("audit", "signatures").stdout
    assert json.loads(patient.ok("status", "S001", "--json").stdout)["signatures"][0]["key_id"] is None



def test_an_admin_registers_a_key_for_a_user_who_cannot_register_for_others(app: TrialConduct) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pgf_events.domain.errors import RuleViolation
    from pgf_events.domain.esign import public_pem

    enrolled(app, "S001")
    app.change_role("grant", "ada", "admin", by="ada")
    app.change_role("grant", "dr.wang", "investigator", by="ada")
    app.change_role("grant", "dr.li", "investigator", by="ada")
    key = Ed25519PrivateKey.generate()
    pem = public_pem(key.public_key())
    with pytest.raises(RuleViolation, match=r"dr\.li may register only their own key"):
        app.register_key(pem, user="dr.wang", by="dr.li")
    key_id = app.register_key(pem, user="dr.wang", by="ada", reason="received in person")
    app.approve_key(key_id, by="ada")  # the registering admin may approve; the owner may not
    assert app.sign("S001", "review", user="dr.wang", private_key=key)["ref"] == "S001#5"
    registered = [e for e in app.events.get(DIRECTORY_ID) if type(e).__name__ == "KeyRegistered"]
    assert [(e.user, e.registered_by) for e in registered] == [("dr.wang", "ada")]


@pytest.mark.postgres
def test_postgres_with_roles_on_an_admin_registers_the_key_and_the_investigator_signs(pg_url: str,
                                                                                      tmp_path: Path) -> None:
    from tests.pgcluster import Cluster

    for login in ("ada", "dr.wang", "cora"):
        Cluster.session().ensure_login(login)
    pgf = Pgf(pg_url)
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up", user="ada")
    pgf.ok("users", "grant", "dr.wang", "investigator", user="ada")
    pgf.ok("users", "grant", "cora", "coordinator", user="ada")
    wang = CliSigner(pgf, tmp_path, "dr.wang", register=False)
    pgf.rejected("keys", "register", f"{wang.key}.pub", "--for", "dr.wang", user="cora", contains="admin")
    assert pgf.ok("keys", "register", f"{wang.key}.pub", "--for", "dr.wang", user="ada").stdout.strip() == wang.key_id
    pgf.ok("keys", "approve", "dr.wang", wang.key_id, user="ada")
    wang.sign("S001", "--meaning", "approval")
    wang.rejected("S001", "--meaning", "review", user="cora", contains="")  # a coordinator may not sign at all
    rows = json.loads(pgf.ok("audit", "signatures", "--json", user="dr.wang").stdout)
    assert [(r["signer"], r["signature"]) for r in rows] == [("dr.wang", "verified")]
