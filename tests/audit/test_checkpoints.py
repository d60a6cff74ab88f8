"""Signed checkpoints on SQLite and PostgreSQL: statements kept outside the store catch a rewritten log,
and a forged or edited statement is caught by its signature."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pgf_events.domain import esign
from tests.audit.attacker import Attacker
from tests.audit.keys import PASSPHRASE, CliSigner
from tests.conftest import REGISTER, Pgf


@pytest.fixture
def kept(pgf_any: Pgf, tmp_path: Path) -> tuple[Pgf, CliSigner, Path]:
    """A store with a patient and an auditor's approved key; one checkpoint statement appended to a file."""
    pgf_any.ok("record", "register", "S001", *REGISTER)
    pgf_any.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18")
    auditor = CliSigner(pgf_any, tmp_path, "aud")
    pgf_any.ok("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.5")  # the head: a patient's event
    file = tmp_path / "outside" / "checkpoints.jsonl"
    file.parent.mkdir()
    checkpoint(pgf_any, auditor, file)
    return pgf_any, auditor, file


def checkpoint(pgf: Pgf, signer: CliSigner, file: Path) -> dict:
    result = pgf.ok("audit", "checkpoint", "--append-to", str(file), *signer.args(), user=signer.user)
    assert "appended to" in result.stderr
    line = json.loads(result.stdout)
    assert json.loads(file.read_text().splitlines()[-1]) == line
    return line


def failing(pgf: Pgf, file: Path) -> str:
    result = pgf("audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: checkpoint statement "), result.stderr
    return lines[0]


def test_statements_verify_and_the_log_extends_each(kept: tuple[Pgf, CliSigner, Path]) -> None:
    pgf, auditor, file = kept
    first = json.loads(file.read_text())
    statement = first["statement"]
    assert statement["signer"] == "aud" and statement["key_id"] == auditor.key_id
    assert statement["scheme"] == "pgf-checkpoint/1" and statement["position"] >= 2 and len(statement["store"]) == 64
    assert statement["database_time"].endswith("Z")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-03", "--anc", "0.6")
    checkpoint(pgf, auditor, file)
    out = pgf.ok("audit", "verify", "--checkpoint", str(file)).stdout
    assert "2 signed checkpoint statement(s): every signature verifies and the log extends each one" in out
    doc = json.loads(pgf.ok("audit", "verify", "--checkpoint", str(file), "--json").stdout)
    assert [s["ok"] for s in doc["statements"]] == [True, True]
    assert doc["statements"][0]["position"] == statement["position"]


def test_a_log_rewritten_after_a_checkpoint_fails_naming_the_statement(kept: tuple[Pgf, CliSigner, Path]) -> None:
    pgf, _, file = kept
    position = json.loads(file.read_text())["statement"]["position"]
    db = Attacker(pgf.url)
    try:  # edit the lab value, then recompute every link and the head: the chain alone is fooled
        db.drop_triggers()
        at = db.position_of(("S001", 2))
        db.set_state(at, db.state(at).replace(b'"plt":18', b'"plt":98'))
        db.rechain()
        db.restore_triggers()  # covering the tracks: verify names dropped triggers
    finally:
        db.close()
    pgf.ok("audit", "verify")
    line = failing(pgf, file)
    assert f"statement 1 (position {position}, signed by aud at " in line
    assert "no longer matches it: the store was rewritten after the checkpoint" in line


def test_events_removed_after_a_checkpoint_fail(kept: tuple[Pgf, CliSigner, Path]) -> None:
    pgf, _, file = kept
    db = Attacker(pgf.url)
    try:
        db.drop_triggers()
        last = db.last_position()
        db.delete_event(last)
        db.delete_link(last)
        db.rechain()
        db.sql(f"UPDATE {db.head} SET position = ?", (last - 1,))
        db.restore_triggers()
    finally:
        db.close()
    pgf.ok("audit", "verify")  # the shortened log, re-chained, fools the chain alone
    line = failing(pgf, file)
    assert "statement 1" in line and "events were removed after the checkpoint" in line


def _rewrite(file: Path, change: dict, sign_with: tuple[Path, str] | None = None) -> None:
    doc = json.loads(file.read_text())
    doc["statement"].update(change)
    if sign_with is not None:
        from pgf_events.domain.esign import load_private

        key = load_private(sign_with[0].read_bytes(), sign_with[1])
        doc["signature"] = esign.sign(key, doc["statement"])
    file.write_text(json.dumps(doc) + "\n")


EDITED = "its signature does not verify: the statement was forged or edited"


@pytest.mark.parametrize("change,expected", [
    ({"position": 1}, EDITED), ({"database_time": "2020-01-01T00:00:00Z"}, EDITED), ({"chain_hash": "0" * 64}, EDITED),
    ({"signer": "dr.wang"}, "it names dr.wang as signer but key"),
])
def test_an_edited_statement_fails(kept: tuple[Pgf, CliSigner, Path], change: dict, expected: str) -> None:
    pgf, _, file = kept
    _rewrite(file, change)
    assert expected in failing(pgf, file)


def test_a_forged_signature_fails(kept: tuple[Pgf, CliSigner, Path]) -> None:
    pgf, _, file = kept
    doc = json.loads(file.read_text())
    doc["signature"] = base64.b64encode(b"\x00" * 64).decode()
    file.write_text(json.dumps(doc) + "\n")
    assert "its signature does not verify" in failing(pgf, file)
    file.write_text("not a statement\n")
    assert "is not a pgf checkpoint statement" in failing(pgf, file)


def test_a_statement_signed_with_an_unregistered_or_anothers_key_fails(kept: tuple[Pgf, CliSigner, Path],
                                                                        tmp_path: Path) -> None:
    pgf, _, file = kept
    original = file.read_text()
    private, _public, key_id = esign.generate(PASSPHRASE)
    rogue = tmp_path / "rogue.pem"
    rogue.write_bytes(private)
    _rewrite(file, {"key_id": key_id}, sign_with=(rogue, PASSPHRASE))
    assert f"signed with key {key_id}, which is not registered in this store" in failing(pgf, file)
    eve = CliSigner(pgf, tmp_path, "eve")  # a registered user forging a statement in the auditor's name
    file.write_text(original)
    _rewrite(file, {"key_id": eve.key_id}, sign_with=(eve.key, PASSPHRASE))
    assert f"names aud as signer but key {eve.key_id} belongs to eve" in failing(pgf, file)


def test_checkpoint_refuses_a_broken_chain_a_wrong_passphrase_and_anothers_key(kept: tuple[Pgf, CliSigner, Path],
                                                                               tmp_path: Path) -> None:
    pgf, auditor, file = kept
    before = file.read_text()
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("nope nope nope\n")
    pgf.rejected("audit", "checkpoint", "--append-to", str(file), *auditor.args(passphrase=wrong), user="aud",
                 contains="the passphrase does not open")
    pgf.rejected("audit", "checkpoint", "--append-to", str(file), *auditor.args(), user="eve",
                 contains=f"key {auditor.key_id} belongs to aud")
    db = Attacker(pgf.url)
    try:
        db.drop_triggers()
        at = db.position_of(("S001", 2))
        db.set_state(at, db.state(at).replace(b'"plt":18', b'"plt":98'))
    finally:
        db.close()
    pgf.rejected("audit", "checkpoint", "--append-to", str(file), *auditor.args(), user="aud",
                 contains="no checkpoint taken: chain broken at S001#2")
    assert file.read_text() == before
