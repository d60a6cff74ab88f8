"""A dropped or disabled append-only trigger is evidence: opening the store never re-creates it, every
write is refused while it is missing, ``pgf audit verify`` names it, and only ``pgf db upgrade`` (an
admin, logged in ``pgf_store``) puts it back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit.attacker import Attacker
from tests.audit.test_chain import build
from tests.conftest import Pgf
from tests.pgcluster import OWNER

LAB = ("record", "lab", "S002", "--date", "2025-03-03", "--anc", "0.7")


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[Pgf, Attacker]]:
    build(store_url)
    attacker = Attacker(store_url)
    yield Pgf(store_url), attacker
    attacker.close()


def events(db: Attacker) -> int:
    return int(db.sql(f"SELECT COUNT(*) FROM {db.events}")[0][0])


def triggers_broken(pgf: Pgf) -> str:
    result = pgf("audit", "verify", "--json")
    assert result.exit_code == 1, result.stdout
    assert json.loads(result.stdout)["first_broken"]["kind"] == "triggers", result.stdout
    assert "pgf db upgrade" in result.stderr, result.stderr
    return result.stderr


def admin(db: Attacker) -> str | None:
    """Who may run ``pgf db upgrade``: an admin (SQLite), the schema's owner (PostgreSQL)."""
    return None if db.sqlite else OWNER


def remove_one(db: Attacker) -> None:
    """The quiet way in: one guard gone, so an UPDATE of a payload would go through."""
    if db.sqlite:
        db.sql("DROP TRIGGER pgf_no_update_stored_events")
    else:
        db.sql(f"ALTER TABLE {db.events} DISABLE TRIGGER pgf_append_only")


def test_a_missing_trigger_is_reported_refuses_writes_and_only_an_upgrade_restores_it(
        store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    remove_one(db)
    for _ in range(2):  # opening the store (any command) does not put it back
        pgf.ok("status", "S001")
        triggers_broken(pgf)
    before = events(db)
    pgf.rejected(*LAB, contains="triggers are missing")
    assert events(db) == before  # nothing written
    out = pgf.ok("db", "upgrade", user=admin(db)).stdout
    assert "restored 1 missing append-only trigger(s)" in out, out
    meta = dict(db.sql(f"SELECT key, value FROM {db.meta}"))
    logged = [value for key, value in meta.items() if key.startswith("triggers_restored_at:")]
    name = "pgf_no_update_stored_events" if db.sqlite else f"{db.events.split('.')[-1]}.pgf_append_only"
    assert len(logged) == 1 and logged[0].startswith("1 by ") and logged[0].endswith(name), logged
    assert json.loads(pgf.ok("audit", "verify", "--json").stdout)["ok"] is True
    pgf.ok(*LAB)
    assert events(db) == before + 1
    assert "nothing to upgrade" in pgf.ok("db", "upgrade", user=admin(db)).stdout


def hollow_out(db: Attacker, how: str) -> str:
    """Keep a guard's name but make it do nothing; returns the name verify and writes must give."""
    if db.sqlite:
        db.sql("DROP TRIGGER pgf_no_delete_stored_events")
        if how == "function":  # a body that refuses nothing
            db.sql("CREATE TRIGGER pgf_no_delete_stored_events BEFORE DELETE ON stored_events BEGIN SELECT 1; END")
        else:  # the same body, under a condition that never holds
            db.sql("CREATE TRIGGER pgf_no_delete_stored_events BEFORE DELETE ON stored_events WHEN 0 "
                   "BEGIN SELECT RAISE(ABORT, 'pgf: stored_events is append-only (DELETE refused)'); END")
        return "pgf_no_delete_stored_events"
    schema = db.events.rsplit(".", 1)[0]
    if how == "function":  # the guard now calls a function that lets everything through
        db.sql(f"CREATE FUNCTION {schema}.pgf_let_through() RETURNS trigger LANGUAGE plpgsql AS "
               "$$ BEGIN RETURN COALESCE(NEW, OLD); END $$")
        db.sql(f"CREATE OR REPLACE TRIGGER pgf_append_only BEFORE UPDATE OR DELETE ON {db.events} "
               f"FOR EACH ROW EXECUTE FUNCTION {schema}.pgf_let_through()")
    else:  # the guard's own function, its body replaced
        db.sql(f"CREATE OR REPLACE FUNCTION {schema}.pgf_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
               "$$ BEGIN RETURN COALESCE(NEW, OLD); END $$")
    return f"{db.events.rsplit('.', 1)[-1].strip(chr(34))}.pgf_append_only"


@pytest.mark.parametrize("how", ["function", "body"])
def test_a_guard_that_keeps_its_name_but_does_nothing_counts_as_missing(
        store: tuple[Pgf, Attacker], how: str) -> None:
    pgf, db = store
    name = hollow_out(db, how)
    triggers_broken(pgf)
    pgf.rejected(*LAB, contains=name)
    out = pgf.ok("db", "upgrade", user=admin(db)).stdout
    assert name in out, out
    with pytest.raises(Exception, match="append-only"):
        db.sql(f"DELETE FROM {db.events} WHERE {db.pos} = 1")
    logged = [v for k, v in db.sql(f"SELECT key, value FROM {db.meta}") if k.startswith("triggers_restored_at:")]
    assert logged and name in logged[0], logged
    assert json.loads(pgf.ok("audit", "verify", "--json").stdout)["ok"] is True
    pgf.ok(*LAB)


def test_an_import_is_refused_while_a_trigger_is_missing(store: tuple[Pgf, Attacker], tmp_path: Path) -> None:
    pgf, db = store
    remove_one(db)
    before = events(db)
    lines = [json.dumps({"record": "lab", "subject": "S002", "date": f"2025-03-{day:02d}", "anc": 0.5})
             for day in range(3, 9)]
    path = tmp_path / "labs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    pgf.rejected("import", str(path), contains="triggers are missing")
    assert events(db) == before
    # with a line that does not parse as well (either is reported first), and with no line that parses
    for bad in ([*lines, '{"record": "lab", "subject": "S002", "date": "2025-03-32"}'], ['{"kind": "lab"}'] * 2):
        path.write_text("\n".join(bad) + "\n")
        result = pgf("import", str(path))
        assert result.exit_code == 1 and "Traceback" not in result.stderr, result.stderr
        assert "line " in result.stderr or "triggers are missing" in result.stderr, result.stderr
        assert events(db) == before


def test_every_trigger_dropped_is_named_by_verify_not_re_created_by_a_read(store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    db.drop_triggers(notary=False)
    pgf.ok("report", "endpoints")
    stderr = triggers_broken(pgf)
    assert "missing or disabled" in stderr
    db.restore_triggers()  # an attacker covering their tracks: verify cannot tell (checkpoints can)
    assert json.loads(pgf.ok("audit", "verify", "--json").stdout)["ok"] is True
