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


def test_sqlite_a_trigger_replaced_by_one_that_does_nothing_counts_as_missing(
        store: tuple[Pgf, Attacker]) -> None:
    pgf, db = store
    if not db.sqlite:
        pytest.skip("SQLite: a trigger is its SQL; PostgreSQL's are checked by name and enabled state")
    db.sql("DROP TRIGGER pgf_no_delete_stored_events")
    db.sql("CREATE TRIGGER pgf_no_delete_stored_events BEFORE DELETE ON stored_events BEGIN SELECT 1; END")
    triggers_broken(pgf)
    pgf.rejected(*LAB, contains="pgf_no_delete_stored_events")
    out = pgf.ok("db", "upgrade").stdout
    assert "pgf_no_delete_stored_events" in out, out
    with pytest.raises(Exception, match="append-only"):
        db.sql("DELETE FROM stored_events WHERE rowid = 1")
    logged = [v for k, v in db.sql(f"SELECT key, value FROM {db.meta}") if k.startswith("triggers_restored_at:")]
    assert logged and "pgf_no_delete_stored_events" in logged[0]


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
