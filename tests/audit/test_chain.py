"""The tamper-evident chain on SQLite and PostgreSQL: every kind of tampering is caught and named."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.chain import GENESIS, Checkpoint, link_hash, material_identity
from pgf_events.store import parse_url
from tests.audit.attacker import Attacker
from tests.conftest import Pgf, postgres_cluster
from tests.helpers import USER, enrolled, infuse, register
from tests.pgcluster import OWNER


def build(url: str) -> None:
    """Two patients, 8 events: S001#1..6 at positions 1..4, 6, 8; S002#1..2 at 5 and 7."""
    app = TrialConduct.open(url)
    enrolled(app, "S001")  # positions 1-4
    register(app, "S002")  # 5
    infuse(app, "S001", "2025-02-25")  # 6 = S001#5
    app.record("lab", "S002", {"date": "2025-03-01", "anc": 0.4, "plt": 18}, user=USER)  # 7 = S002#2
    app.record("lab", "S001", {"date": "2025-03-02", "anc": 0.6}, user=USER)  # 8 = S001#6
    app.close()


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[Pgf, Attacker]]:
    build(store_url)
    attacker = Attacker(store_url)
    yield Pgf(store_url), attacker
    attacker.close()


def broken(pgf: Pgf) -> tuple[dict, str]:
    result = pgf("audit", "verify", "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: chain broken at "), result.stderr
    return json.loads(result.stdout)["first_broken"], result.stderr


def test_a_clean_store_verifies(store: tuple[Pgf, Attacker]) -> None:
    pgf, _ = store
    text = pgf.ok("audit", "verify").stdout
    assert "chain intact: 8 events, head 8-" in text and "events/s" in text
    summary = json.loads(pgf.ok("audit", "verify", "--json").stdout)
    assert summary["ok"] is True and summary["events"] == 8 and summary["head"]["position"] == 8
    assert summary["backfilled_links"] == 0 and summary["first_broken"] is None


def test_a_flipped_byte_in_a_payload_is_caught(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    position = db.position_of(("S002", 2))
    state = db.state(position)
    at = state.index(b'"plt":18') + len(b'"plt":')
    db.set_state(position, state[:at] + b"9" + state[at + 1:])  # 18 -> 98
    first, stderr = broken(pgf)
    assert first["kind"] == "modified" and first["ref"] == "S002#2" and first["subject"] == "S002"
    assert first["position"] == 7 and "S002#2 (position 7)" in stderr


def test_a_deleted_event_is_caught(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    db.delete_event(db.position_of(("S001", 3)))
    first, stderr = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("deleted", "S001#3", 3)
    assert "S001#3" in stderr


def test_an_event_deleted_with_its_link_breaks_the_next_one(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    db.delete_event(3)
    db.delete_link(3)
    first, _ = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("modified", "S001#4", 4)


def test_two_swapped_payloads_are_caught(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    a, b = db.position_of(("S001", 6)), db.position_of(("S002", 2))
    state_a, state_b = db.state(a), db.state(b)
    db.set_state(a, state_b)
    db.set_state(b, state_a)
    first, _ = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("modified", "S002#2", 7)


def test_two_events_swapped_in_log_order_are_caught(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    cols = "originator_id, originator_version, topic, state"
    row6 = db.sql(f"SELECT {cols} FROM {db.events} WHERE {db.pos} = 6")[0]
    row7 = db.sql(f"SELECT {cols} FROM {db.events} WHERE {db.pos} = 7")[0]
    update = f"UPDATE {db.events} SET originator_id = ?, originator_version = ?, topic = ?, state = ? WHERE {db.pos} = ?"
    db.sql(update, (*row6[:1], -1, *row6[2:], 6))  # move out of the way of the primary key
    db.sql(update, (*row6, 7))
    db.sql(update, (*row7, 6))
    first, stderr = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("reordered", "S002#2", 6)
    assert "not the event the chain linked here" in stderr


def test_a_forged_event_is_caught(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    db.insert_copy(db.position_of(("S001", 6)), new_version=7)
    first, stderr = broken(pgf)
    assert (first["kind"], first["ref"]) == ("inserted", "S001#7")
    assert first["position"] == db.last_position() and "no chain link" in stderr


def test_dropping_the_latest_event_is_caught_by_its_link(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    db.delete_event(8)
    first, _ = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("deleted", "S001#6", 8)


def test_dropping_the_latest_event_and_its_link_is_caught_by_the_head(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    db.delete_event(8)
    db.delete_link(8)
    first, stderr = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("truncated", "S001#6", 8)
    assert "ends at position 7" in stderr


def test_a_rewritten_chain_passes_verify_but_not_the_checkpoint(store: tuple[Pgf, Attacker]) -> None:
    """An attacker who recomputes every link and the head defeats the chain alone; a checkpoint kept
    outside the database does not. (On PostgreSQL only the schema owner can do this.)"""
    pgf, db = store
    digest = json.loads(pgf.ok("audit", "verify", "--json").stdout)["head"]["checkpoint"]
    materials = db.link_materials()
    db.drop_triggers()
    state = db.state(7)
    forged = state.replace(b'"plt":18', b'"plt":98')
    db.set_state(7, forged)
    db.sql(f"DELETE FROM {db.chain}")
    h = GENESIS
    for position, material in materials:
        material = material.replace(state, forged)
        h = hashlib.sha256(h + material).digest()
        oid, version = material_identity(material)
        db.sql(f"INSERT INTO {db.chain} (position, originator_id, originator_version, hash, backfilled) "
               "VALUES (?, ?, ?, ?, ?)", (position, oid.hex if db.sqlite else oid, version, h, False))
    db.sql(f"UPDATE {db.head} SET hash = ?", (h,))
    db.restore_triggers()
    pgf.ok("audit", "verify")
    result = pgf("audit", "verify", "--checkpoint", digest)
    assert result.exit_code == 1
    assert "position 8" in result.stderr and "checkpoint" in result.stderr


def test_checkpoint_round_trip(store: tuple[Pgf, Attacker]) -> None:
    pgf, _ = store
    head = json.loads(pgf.ok("audit", "verify", "--json").stdout)["head"]
    digest = head["checkpoint"]
    assert digest.startswith("8-") and len(digest) == 2 + 20
    assert head["hash"].startswith(digest[2:])
    pgf.ok("record", "lab", "S001", "--date", "2025-03-03", "--anc", "0.7")
    text = pgf.ok("audit", "verify", "--checkpoint", digest).stdout
    assert f"the log extends checkpoint {digest}" in text and "9 events" in text
    assert json.loads(pgf.ok("audit", "verify", "--json").stdout)["head"]["checkpoint"] != digest
    # A digest that was never the log's: refused, naming the position.
    forged = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    result = pgf("audit", "verify", "--checkpoint", forged)
    assert result.exit_code == 1 and "position 8" in result.stderr
    # A checkpoint beyond the log: refused.
    result = pgf("audit", "verify", "--checkpoint", "99-" + digest[2:])
    assert result.exit_code == 1 and "does not extend" in result.stderr
    assert pgf("audit", "verify", "--checkpoint", "nonsense").exit_code == 2


@pytest.mark.parametrize("table", ["events", "chain", "head"])
def test_direct_update_and_delete_fail_while_the_triggers_stand(store: tuple[Pgf, Attacker], table: str) -> None:
    pgf, db = store
    name = {"events": db.events, "chain": db.chain, "head": db.head}[table]
    column = {"events": "originator_version", "chain": "originator_version", "head": "position"}[table]
    errors = (Exception,)
    with pytest.raises(errors, match=r"append-only|only moves forward"):
        db.sql(f"UPDATE {name} SET {column} = {column} - 1")
    with pytest.raises(errors, match=r"append-only|cannot be deleted|only moves forward"):
        db.sql(f"DELETE FROM {name}")
    if not db.sqlite:
        with pytest.raises(errors, match="append-only"):
            db.sql(f"TRUNCATE {name}")
    pgf.ok("audit", "verify")


def _old_unchained_store(url: str) -> None:
    """What pgf wrote before the chain: the library's own recorder, no chain, no head, no marker."""
    config = parse_url(url)
    plain = attrs.evolve(config, env={k: v for k, v in config.env.items() if k != "APPLICATION_RECORDER_TOPIC"})
    old = TrialConduct(plain)
    enrolled(old, "S001", user=OWNER if config.backend == "postgresql" else USER)
    old.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Pgf]:
    """An old unchained store and its owner (on PostgreSQL the schema owner's login)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/old.db"
        _old_unchained_store(url)
        yield Pgf(url)
        return
    cluster = postgres_cluster()
    schema = "t_" + uuid.uuid4().hex[:12]
    url = cluster.url(OWNER, schema)
    _old_unchained_store(url)
    yield Pgf(url, user=OWNER)
    cluster.drop_schema(schema)


def test_an_old_unchained_store_is_never_chained_behind_anyones_back(old_store: Pgf) -> None:
    pgf = old_store
    result = pgf("audit", "verify", "--json")
    assert result.exit_code == 1 and "no tamper-evident chain" in result.stderr, result.stderr
    assert json.loads(result.stdout)["first_broken"]["kind"] == "unchained"
    pgf.rejected("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", contains="upgrade")
    assert pgf("audit", "verify").exit_code == 1  # still: neither verify nor a write chained it
    pgf.ok("history", "S001")  # it still reads


def test_the_explicit_upgrade_chains_an_old_store_and_logs_it(old_store: Pgf) -> None:
    pgf = old_store
    out = pgf.ok("db", "upgrade").stdout
    assert f"upgraded by {pgf.user}" in out and "4 stored event(s)" in out
    summary = json.loads(pgf.ok("audit", "verify", "--json").stdout)
    assert summary["events"] == 4 and summary["backfilled_links"] == 4
    assert "built when this store was upgraded" in pgf.ok("audit", "verify").stdout
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4")
    summary = json.loads(pgf.ok("audit", "verify", "--json").stdout)
    assert summary["ok"] and summary["events"] == 5 and summary["backfilled_links"] == 4
    assert "nothing to upgrade" in pgf.ok("db", "upgrade").stdout
    db = Attacker(pgf.url)
    meta = dict(db.sql(f"SELECT key, value FROM {db.meta}"))
    db.close()
    assert meta["upgraded_by"] == pgf.user and meta["backfilled_to"] == "4" and "upgraded_at" in meta


def test_a_forged_event_stays_reported_after_later_writes(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers()
    db.insert_copy(db.position_of(("S001", 6)), new_version=7)
    forged = db.last_position()
    db.restore_triggers()  # (with one missing, the write below is refused)
    later = ("record", "lab", "S002", "--date", "2025-03-03", "--anc", "0.7")
    if db.sqlite:
        pgf.ok(*later)
    else:  # the database's notary numbers every row itself: it refuses to write after a row it never stamped
        pgf.rejected(*later, contains="not stamped by the notary")
    first, _ = broken(pgf)
    assert (first["kind"], first["ref"], first["position"]) == ("inserted", "S001#7", forged)


def test_a_missing_head_is_reported_and_not_rebuilt(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers(notary=False)
    db.sql(f"DELETE FROM {db.head}")
    first, stderr = broken(pgf)
    assert first["kind"] == "head" and "missing" in stderr
    pgf.rejected("record", "lab", "S002", "--date", "2025-03-03", "--anc", "0.7", contains="chain head is missing")


def test_writing_after_the_latest_events_were_removed_is_refused(sqlite_url: str) -> None:
    build(sqlite_url)
    db = Attacker(sqlite_url)
    db.drop_triggers()
    db.delete_event(8)
    db.delete_link(8)
    db.close()
    pgf = Pgf(sqlite_url)
    pgf.rejected("record", "lab", "S001", "--date", "2025-03-05", "--anc", "0.4", contains="chain head")


def test_checkpoint_parsing() -> None:
    cp = Checkpoint.parse(" 12-ABCDEF0123456789abcd ")
    assert (cp.position, cp.hex_prefix, str(cp)) == (12, "abcdef0123456789abcd", "12-abcdef0123456789abcd")
    with pytest.raises(ValueError, match="must look like"):
        Checkpoint.parse("12-abc")


def test_the_link_encoding_is_unambiguous() -> None:
    from uuid import UUID

    oid = UUID(int=1)
    assert link_hash(GENESIS, oid, 1, "ab", b"c") != link_hash(GENESIS, oid, 1, "a", b"bc")
    assert link_hash(GENESIS, oid, 1, "a", b"b") != link_hash(GENESIS, oid, 2, "a", b"b")
    assert len(link_hash(GENESIS, oid, 1, "a", b"b")) == 32
