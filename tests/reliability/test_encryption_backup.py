"""Encryption at rest with PGF_CIPHER_KEY, and online backups of SQLite stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgf_events.cli import cli
from tests.conftest import REGISTER, Pgf

# Each secret holds a character base64 never produces ('-', '.', ' '), so it cannot turn up in
# ciphertext by chance (a bare "PKU" does, in a few tens of kB of base64).
SECRETS = [b"ZQ-0042", b"secret leukaemia", b"SITE-PEKING", b"nurse.li", b"LIS-77", b"0.4321", b"Aspergillus sp."]
SUBJECT = "ZQ-0042"
REGISTRATION = ["--site", "SITE-PEKING", *REGISTER[2:]]


def _keygen() -> str:
    return CliRunner().invoke(cli, ["keygen"]).stdout.strip()


def _record(pgf: Pgf, key: str) -> None:
    env = {"PGF_CIPHER_KEY": key}
    for args in (["record", "register", SUBJECT, *REGISTRATION, "--diagnosis", "secret leukaemia"],
                 ["record", "lab", SUBJECT, "--date", "2025-03-01", "--anc", "0.4321", "--source", "LIS-77"],
                 ["record", "infection", SUBJECT, "--onset", "2025-03-02", "--site", "lung", "--grade", "3",
                  "--organism", "Aspergillus sp."]):
        result = pgf(*args, user="nurse.li", env=env)
        assert result.exit_code == 0, result.stderr


def test_encrypted_store_holds_no_subject_code_value_or_free_text(tmp_path: Path) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/enc.db")
    key = _keygen()
    _record(pgf, key)
    for args in (["report", "endpoints"], ["report", "infections"], ["status", SUBJECT, "--json"]):  # fill the read models
        result = pgf.runner.invoke(cli, ["--db", pgf.url, *args], env={"PGF_CIPHER_KEY": key})
        assert result.exit_code == 0, result.stderr
    assert "Aspergillus sp." in result.stdout  # the reader with the key sees everything
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("enc.db"))
    for secret in SECRETS:
        assert secret not in raw, secret
    history = pgf.runner.invoke(cli, ["--db", pgf.url, "history", SUBJECT, "--json"], env={"PGF_CIPHER_KEY": key})
    assert json.loads(history.stdout)["events"][1]["data"]["anc"] == 0.4321


def test_unencrypted_store_does_contain_them(tmp_path: Path) -> None:
    """The control for the test above: the secrets are there when no key is set."""
    pgf = Pgf(f"sqlite:///{tmp_path}/plain.db")
    _record(pgf, "")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"secret leukaemia" in raw and b"LIS-77" in raw and b"SITE-PEKING" in raw


@pytest.mark.parametrize("key,message", [
    (None, "is encrypted; set PGF_CIPHER_KEY"),
    ("other", "wrong key"),
    ("not-base64!", "must be 16, 24 or 32 bytes"),
])
def test_an_encrypted_store_is_refused_without_its_key(tmp_path: Path, key: str | None, message: str) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/enc.db")
    _record(pgf, _keygen())
    env = {"PGF_CIPHER_KEY": _keygen() if key == "other" else key}
    result = pgf.runner.invoke(cli, ["--db", pgf.url, "history", SUBJECT], env=env)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_key_on_a_plain_store_is_refused(tmp_path: Path) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/plain.db")
    _record(pgf, "")
    result = pgf.runner.invoke(cli, ["--db", pgf.url, "history", SUBJECT], env={"PGF_CIPHER_KEY": _keygen()})
    assert result.exit_code == 1 and "is not encrypted" in result.stderr


def test_backup_is_a_consistent_copy_with_the_same_history(tmp_path: Path) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/trial.db")
    pgf.ok("demo", "--patients", "4", "--seed", "2")
    target = tmp_path / "copy.db"
    out = json.loads(pgf.ok("backup", str(target), "--json").stdout)
    assert out["events"] > 100 and target.exists()
    copy = Pgf(f"sqlite:///{target}")
    for subject in ("S001", "S004"):
        assert copy.ok("history", subject, "--json").stdout == pgf.ok("history", subject, "--json").stdout
    assert copy.ok("audit", "verify").exit_code == 0  # the copy verifies ...
    for name in ("endpoints", "survival", "safety"):  # ... and reports the same results
        assert copy.ok("report", name, "--json").stdout == pgf.ok("report", name, "--json").stdout
    pgf.rejected("backup", str(target), contains="never overwrites")
    pgf.rejected("backup", str(tmp_path / "no" / "x.db"), contains="does not exist")


def test_backup_of_postgres_points_to_pg_dump(pg_url: str) -> None:
    pgf = Pgf(pg_url)
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.rejected("backup", "/tmp/never.db", contains="pg_dump")
