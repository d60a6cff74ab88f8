"""A store made before the current notary (triggers version 1: the row trigger that links; 2: the
statement-level one stamping each row with two lookups) keeps working and verifying until its owner
runs ``pgf db upgrade``, which switches it (logged; said and done once); imports through the CLI, a
site-scoped login's writes and the trigger check work on every kind of store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from pgf_events import bulk
from pgf_events.audit.pg_notary import TRIGGERS, TRIGGERS_KEY
from pgf_events.audit.recorders_postgres import ChainedPostgresRecorder
from tests.audit.attacker import Attacker
from tests.conftest import REGISTER, Pgf, enrol_via_cli, fingerprint, make_pg_store
from tests.pgcluster import OWNER, Cluster

pytestmark = pytest.mark.postgres
NOTARY = ("pgf_notarise", "pgf_notarise_head", "pgf_notarise_links")
CURRENT = ["pgf_notarise", "pgf_notarise_begin", "pgf_notarise_links"]  # triggers version 3


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 50)  # an import of a few hundred lines moves several chunks


def _made_with(monkeypatch: pytest.MonkeyPatch, triggers: str) -> Iterator[Pgf]:
    with monkeypatch.context() as m:
        m.setattr(ChainedPostgresRecorder, "new_store_triggers", triggers)
        url, schema = make_pg_store()
    yield Pgf(url)
    Cluster.session().drop_schema(schema)


@pytest.fixture
def old(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pgf]:
    """A store as pgf made it before: the row trigger that hashes and links, and its head trigger."""
    yield from _made_with(monkeypatch, "1")


@pytest.fixture
def v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pgf]:
    """A store of triggers version 2: each row stamped with two lookups, each statement linked at once."""
    yield from _made_with(monkeypatch, "2")


def labs(tmp_path: Path, subject: str, count: int, first: date = date(2025, 2, 25)) -> str:
    path = tmp_path / f"labs-{subject}-{count}.jsonl"
    path.write_text("".join(json.dumps({"record": "lab", "subject": subject, "anc": 0.4 + n % 7 / 10,
                                        "date": (first + timedelta(days=n)).isoformat()}) + "\n" for n in range(count)))
    return str(path)


def notary_triggers(pgf: Pgf) -> tuple[list[str], dict[str, str]]:
    db = Attacker(pgf.url)
    try:
        names = db.sql(f"SELECT tgname FROM pg_trigger WHERE tgrelid = '{db.events}'::regclass "
                       "AND tgname LIKE 'pgf_notarise%%' ORDER BY 1")
        return [n for (n,) in names], dict(db.sql(f"SELECT key, value FROM {db.meta}"))
    finally:
        db.close()


def verified(pgf: Pgf, user: str | None = None) -> dict[str, Any]:
    summary = json.loads(pgf.ok("audit", "verify", "--json", user=user).stdout)
    db = Attacker(pgf.url)
    counts = db.sql(f"SELECT (SELECT count(*) FROM {db.events}), (SELECT count(*) FROM {db.chain}), "
                    f"(SELECT position FROM {db.head})")
    db.close()
    assert summary["ok"] and summary["events"] == counts[0][0] == counts[0][1] == counts[0][2], (summary, counts)
    return summary  # type: ignore[no-any-return]


def test_a_new_store_gets_the_statement_level_notary(pg_url: str) -> None:
    names, meta = notary_triggers(Pgf(pg_url))
    assert names == CURRENT and meta[TRIGGERS_KEY] == TRIGGERS == "3"


def test_an_old_store_works_unchanged_until_upgraded_then_switches_once(old: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(old)
    old.ok("import", labs(tmp_path, "S001", 120))  # three chunks through the row trigger
    names, meta = notary_triggers(old)
    assert names == ["pgf_notarise", "pgf_notarise_head"] and TRIGGERS_KEY not in meta
    assert verified(old)["events"] > 120  # the trigger check asks no links trigger of it
    out = old.ok("db", "upgrade", user=OWNER).stdout
    assert "statement-level notary" in out and "nothing to upgrade" not in out
    names, after = notary_triggers(old)
    assert names == CURRENT
    assert {k: v for k, v in after.items() if k not in meta} == {
        TRIGGERS_KEY: TRIGGERS, f"{TRIGGERS_KEY}_by": OWNER, f"{TRIGGERS_KEY}_at": after[f"{TRIGGERS_KEY}_at"]}
    old.ok("record", "register", "S002", *REGISTER)
    old.ok("record", "lab", "S001", "--date", "2026-06-01", "--anc", "0.6")
    old.ok("import", labs(tmp_path, "S002", 110, date(2025, 3, 1)))
    assert verified(old)["events"] > 120 + 1 + 1 + 110  # links of both notaries in one chain
    before = fingerprint(old.url), notary_triggers(old)
    assert "nothing to upgrade" in old.ok("db", "upgrade", user=OWNER).stdout
    assert (fingerprint(old.url), notary_triggers(old)) == before


def assert_checked(pgf: Pgf, trigger: str) -> None:
    """The store's trigger check covers ``trigger``: disabled, verify names the triggers; enabled again."""
    db = Attacker(pgf.url)
    db.sql(f"ALTER TABLE {db.events} DISABLE TRIGGER {trigger}")
    db.close()
    assert json.loads(pgf("audit", "verify", "--json").stdout)["first_broken"]["kind"] == "triggers"
    db = Attacker(pgf.url)
    db.sql(f"ALTER TABLE {db.events} ENABLE TRIGGER {trigger}")
    db.close()


def test_a_store_of_version_2_works_until_upgraded_then_switches_once(v2: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(v2)
    v2.ok("import", labs(tmp_path, "S001", 120))
    names, meta = notary_triggers(v2)
    assert names == ["pgf_notarise", "pgf_notarise_links"] and meta[TRIGGERS_KEY] == "2"
    assert verified(v2)["events"] > 120  # the trigger check asks no statement start of it
    assert_checked(v2, "pgf_notarise_links")
    out = v2.ok("db", "upgrade", user=OWNER).stdout
    assert "statement-level notary, triggers version 3" in out and "nothing to upgrade" not in out
    names, after = notary_triggers(v2)
    assert names == CURRENT
    key = f"{TRIGGERS_KEY}_{TRIGGERS}"  # pgf_store is append-only: version 2's row stays, a later one is added
    assert {k: v for k, v in after.items() if k not in meta} == {
        key: TRIGGERS, f"{key}_by": OWNER, f"{key}_at": after[f"{key}_at"]} and after[TRIGGERS_KEY] == "2"
    v2.ok("record", "lab", "S001", "--date", "2026-06-01", "--anc", "0.6")
    v2.ok("import", labs(tmp_path, "S001", 110, date(2025, 7, 1)))
    assert verified(v2)["events"] > 120 + 1 + 110  # links of both versions in one chain
    assert_checked(v2, "pgf_notarise_begin")
    before = fingerprint(v2.url), notary_triggers(v2)
    assert "nothing to upgrade" in v2.ok("db", "upgrade", user=OWNER).stdout
    assert (fingerprint(v2.url), notary_triggers(v2)) == before


def test_the_trigger_check_asks_each_store_for_its_own_triggers(old: Pgf, pg_url: str) -> None:
    new = Pgf(pg_url)
    for pgf in (old, new):
        enrol_via_cli(pgf)
        verified(pgf)
    db = Attacker(new.url)
    db.sql(f"ALTER TABLE {db.events} DISABLE TRIGGER pgf_notarise_links")
    db.close()
    result = new("audit", "verify", "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["first_broken"]["kind"] == "triggers"
    db = Attacker(old.url)
    db.sql(f"ALTER TABLE {db.events} DISABLE TRIGGER pgf_notarise")
    db.close()
    result = old("audit", "verify", "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["first_broken"]["kind"] == "triggers"


def test_an_import_through_the_cli_is_linked_and_verifies(pg_url: str, tmp_path: Path) -> None:
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)
    pgf.ok("import", labs(tmp_path, "S001", 140))  # three chunks, three statements
    summary = verified(pgf)
    assert summary["events"] > 140 and summary["backfilled_links"] == 0
    db = Attacker(pg_url)
    stamps = db.sql(f"SELECT DISTINCT recorded_by FROM {db.events}")
    db.close()
    assert stamps == [("coordinator1",)]


@pytest.fixture
def scoped(pg_url: str) -> Pgf:
    """A controlled store: ada is admin, aud an auditor, lina a coordinator at site XQ only (S002 is at XQ, S001 at PKU)."""
    pgf = Pgf(pg_url)
    for login in ("ada", "lina", "aud"):
        Cluster.session().ensure_login(login)
    enrol_via_cli(pgf)
    pgf.ok("record", "register", "S002", *[a if a != "PKU" else "XQ" for a in REGISTER])
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up")
    pgf.ok("users", "grant", "lina", "coordinator", "--site", "XQ", "--reason", "XQ coordinator", user="ada")
    pgf.ok("users", "grant", "aud", "auditor", "--reason", "audit", user="ada")
    return pgf


def test_a_site_scoped_logins_writes_are_notarised(scoped: Pgf, tmp_path: Path) -> None:
    scoped.ok("record", "lab", "S002", "--date", "2025-03-01", "--anc", "0.5", user="lina")
    scoped.ok("import", labs(tmp_path, "S002", 30, date(2025, 3, 2)), user="lina")
    before = fingerprint(scoped.url)
    refused = scoped("import", labs(tmp_path, "S001", 3), user="lina")  # PKU's patient
    assert refused.exit_code == 1 and "nothing was written" in refused.stderr
    assert fingerprint(scoped.url) == before
    db = Attacker(scoped.url)
    rows = db.sql(f"SELECT recorded_by, site, count(*), count(c.position) FROM {db.events} e "
                  f"LEFT JOIN {db.chain} c ON c.position = e.notification_id WHERE recorded_by = 'lina' GROUP BY 1, 2")
    db.close()
    assert sorted(rows, key=str) == [("lina", "XQ", 31, 31), ("lina", None, 1, 1)]  # and the import's batch
    verified(scoped, user="aud")
    db = Attacker(scoped.url, login="lina")  # still no privilege on the chain, the head or pgf_store
    for table in (db.chain, db.head, db.meta):
        assert db.sql(f"SELECT has_table_privilege('{table}', 'INSERT') OR has_table_privilege('{table}', 'UPDATE') "
                      f"OR has_table_privilege('{table}', 'DELETE')") == [(False,)]
    schema = db.events.split(".")[0]
    assert db.sql(f"SELECT has_function_privilege('{schema}.pgf_notarise_links()', 'EXECUTE')") == [(False,)]
    db.close()
