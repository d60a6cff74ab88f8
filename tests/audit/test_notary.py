"""The database as notary, verify never repairs, no route around the triggers, bound ciphertexts
(issue 12, items 2, 3 and 7): each attack, on both backends, fails or is detected."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pgf_events import bound_cipher
from pgf_events.audit.chain import GENESIS, material_identity
from tests.audit.attacker import Attacker
from tests.conftest import Pgf, enrol_via_cli, fingerprint

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]
KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, base64
LAB = ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4"]


@pytest.fixture
def store(pgf_any: Pgf) -> Iterator[tuple[Pgf, Attacker]]:
    enrol_via_cli(pgf_any)
    pgf_any.ok(*LAB)
    db = Attacker(pgf_any.url)
    yield pgf_any, db
    db.close()


def verify_fails(pgf: Pgf, kind: str, *words: str) -> str:
    result = pgf("audit", "verify", "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["first_broken"]["kind"] == kind, result.stdout
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


# ------------------------------------------------------------------ item 3: verify never repairs


def test_deleting_the_chain_and_head_is_tampering_and_nothing_rebuilds_them(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers(notary=False)
    state = db.state(5)
    db.set_state(5, state.replace(b'"anc":0.4', b'"anc":4.0'))  # the forged payload
    db.sql(f"DELETE FROM {db.chain}")
    db.sql(f"DELETE FROM {db.head}")
    verify_fails(pgf, "chain", "chain is missing or emptied")
    pgf.rejected("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.5")  # no write rebuilds it
    verify_fails(pgf, "chain")  # and neither did verify
    assert db.sql(f"SELECT COUNT(*) FROM {db.chain}") == [(0,)]


def test_deleting_the_chain_head_and_marker_leaves_an_unverifiable_store(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers(notary=False)
    for table in (db.chain, db.head, db.meta):
        db.sql(f"DELETE FROM {table}")
    verify_fails(pgf, "unchained", "no tamper-evident chain")
    pgf.rejected(*LAB[:-1], "0.5")


def test_a_shortened_chain_is_named(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers(notary=False)
    db.sql(f"DELETE FROM {db.chain} WHERE position >= 4")
    verify_fails(pgf, "inserted", "no chain link")


def test_dropping_a_trigger_is_detected_even_with_the_chain_intact(pg_url: str) -> None:
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    db = Attacker(pg_url)
    db.sql(f"ALTER TABLE {db.events} DISABLE TRIGGER pgf_append_only")
    db.close()
    verify_fails(pgf, "triggers", "triggers are missing or disabled")


# ------------------------------------------------------------------ item 3: no route around the SQLite triggers


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO stored_events (originator_id, originator_version, topic, state) "
    "SELECT originator_id, originator_version, topic, X'7B7D' FROM stored_events WHERE rowid = 2",
    "REPLACE INTO stored_events (rowid, originator_id, originator_version, topic, state) "
    "SELECT 2, originator_id, 99, topic, state FROM stored_events WHERE rowid = 3",
    "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
    "SELECT originator_id, originator_version, topic, X'7B7D' FROM stored_events WHERE rowid = 2 "
    "ON CONFLICT DO UPDATE SET state = excluded.state",
    "INSERT OR REPLACE INTO pgf_chain_head (id, position, hash, originator_id, originator_version) "
    "VALUES (1, 2, X'00', 'x', 1)",
    "INSERT OR REPLACE INTO pgf_chain (position, originator_id, originator_version, hash) VALUES (2, 'x', 1, X'00')",
    "INSERT OR REPLACE INTO pgf_store (key, value) VALUES ('chain', 'none')",
    "UPDATE OR REPLACE stored_events SET originator_version = 1 WHERE rowid = 2",
])
def test_no_sqlite_conflict_resolution_gets_around_the_triggers(sqlite_url: str, statement: str) -> None:
    pgf = Pgf(sqlite_url)
    enrol_via_cli(pgf)
    before = fingerprint(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA recursive_triggers = OFF")  # the attacker's connection, the attacker's pragmas
    with pytest.raises(sqlite3.DatabaseError, match=r"append-only|only moves forward"):
        conn.execute(statement)
    conn.close()
    assert fingerprint(sqlite_url) == before
    pgf.ok("audit", "verify")


@pytest.mark.postgres
def test_no_postgresql_upsert_gets_around_the_triggers_even_for_the_owner(pg_url: str) -> None:
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    db = Attacker(pg_url)
    with pytest.raises(Exception, match=r"append-only|only moves forward"):
        db.sql(f"INSERT INTO {db.events} (originator_id, originator_version, topic, state) "
               f"SELECT originator_id, originator_version, topic, '\\x7b7d' FROM {db.events} WHERE notification_id = 2 "
               "ON CONFLICT (originator_id, originator_version) DO UPDATE SET state = excluded.state")
    with pytest.raises(Exception, match="only moves forward"):
        db.sql(f"INSERT INTO {db.head} (id, position, hash, originator_id, originator_version) "
               "VALUES (1, 1, '\\x00', gen_random_uuid(), 1) ON CONFLICT (id) DO UPDATE SET position = 1")
    db.close()
    pgf.ok("audit", "verify")


# ------------------------------------------------------------------ item 2: the clock


def _faketime() -> str:
    found = shutil.which("faketime")
    if not found:
        pytest.skip("faketime is not installed (apt-get install faketime; .ci/run installs it)")
    return found


def test_a_back_dated_clock_cannot_back_date_an_entry(store_url: str) -> None:
    faketime = _faketime()
    pgf = Pgf(store_url)
    enrol_via_cli(pgf)
    env = {k: v for k, v in os.environ.items() if k != "PGF_USER"}
    url = store_url  # on PostgreSQL: coordinator1's login
    done = subprocess.run([faketime, "2025-06-01 00:00:00", *PGF, "--db", url, *LAB], env=env,
                          capture_output=True, text=True)
    if store_url.startswith("sqlite"):
        assert done.returncode == 1 and "earlier than the last recorded event" in done.stderr, done.stderr
        return
    assert done.returncode == 0, done.stderr  # the database stamped it with its own clock
    history = json.loads(pgf.ok("history", "S001", "--json").stdout)
    recorded = datetime.fromisoformat(history["events"][-1]["recorded_at"].replace("Z", "+00:00"))
    assert abs(recorded - datetime.now(UTC)) < timedelta(minutes=5)
    db = Attacker(store_url)
    assert db.sql(f"SELECT count(*) FROM {db.events} WHERE recorded_at < '2026-01-01'") == [(0,)]
    db.close()
    pgf.ok("audit", "verify")


@pytest.mark.postgres
def test_the_database_stamps_and_chains_what_a_client_cannot_choose(pg_url: str) -> None:
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    db = Attacker(pg_url)
    rows = db.sql(f"SELECT notification_id, recorded_by FROM {db.events} ORDER BY 1")
    head = db.sql(f"SELECT position FROM {db.head}")
    materials = db.link_materials()
    links = db.sql(f"SELECT position, hash FROM {db.chain} ORDER BY 1")
    db.close()
    assert rows == [(1, "coordinator1"), (2, "coordinator1"), (3, "coordinator1"), (4, "coordinator1")]
    assert head == [(4,)]
    h = GENESIS
    for (position, material), (linked, digest) in zip(materials, links, strict=True):
        h = hashlib.sha256(h + material).digest()
        assert position == linked and bytes(digest) == h
        assert material.endswith(b"coordinator1" + material[-8:])  # the stamps are in the hashed material
        assert material_identity(material)[1] >= 1


# ------------------------------------------------------------------ item 7: ciphertexts bound to their place


@pytest.fixture
def encrypted(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Pgf, Attacker]]:
    monkeypatch.setenv("PGF_CIPHER_KEY", KEY)
    pgf = Pgf(store_url)
    enrol_via_cli(pgf)
    pgf.ok(*LAB)
    db = Attacker(store_url)
    yield pgf, db
    db.close()


def _swap_and_relink(db: Attacker, a: int, b: int) -> None:
    """A keyless attacker copies one ciphertext over another and rebuilds the (unkeyed) chain."""
    state_a, state_b = db.state(a), db.state(b)
    materials = db.link_materials()
    db.drop_triggers()
    db.set_state(b, state_a)
    db.sql(f"DELETE FROM {db.chain}")
    h = GENESIS
    for position, material in materials:
        if position == b:  # the material with the other payload (its length prefix too)
            at = material.index(state_b)
            material = material[:at - 8] + len(state_a).to_bytes(8, "big") + state_a + material[at + len(state_b):]
        h = hashlib.sha256(h + material).digest()
        oid, version = material_identity(material)
        db.sql(f"INSERT INTO {db.chain} (position, originator_id, originator_version, hash, backfilled) "
               "VALUES (?, ?, ?, ?, ?)", (position, oid.hex if db.sqlite else oid, version, h, False))
    db.sql(f"UPDATE {db.head} SET hash = ?", (h,))
    db.restore_triggers()


def test_a_swapped_ciphertext_is_detected_on_read_and_by_verify(encrypted: tuple[Pgf, Attacker]) -> None:
    pgf, db = encrypted
    assert db.state(2).startswith(bound_cipher.MARKER)
    _swap_and_relink(db, 2, 3)  # S001#2's consent ciphertext over S001#3's screening
    result = pgf("history", "S001")
    assert result.exit_code == 1 and "does not belong there" in result.stderr and "Traceback" not in result.stderr
    verify_fails(pgf, "ciphertext", "S001#3", "does not open in its place")


def test_stores_encrypted_before_binding_still_read(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGF_CIPHER_KEY", KEY)
    with monkeypatch.context() as m:  # what the library's AESCipher wrote before this change
        m.setattr(bound_cipher, "seal", lambda cipher, plain, *where: cipher.encrypt(plain))
        pgf = Pgf(store_url)
        enrol_via_cli(pgf)
    db = Attacker(store_url)
    assert not db.state(1).startswith(bound_cipher.MARKER)
    db.close()
    pgf.ok(*LAB)  # new events are bound; old ones still open
    assert len(json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]) == 5
    pgf.ok("audit", "verify")
