"""Commands that read no patient never import the patient domain (issue 18: the start-up of ``pgf audit
verify`` is most of its fixed cost).

Each case runs the real ``pgf`` in a fresh interpreter, as the OS account, and lists the modules it
imported. Not a timing test: a module imported again at the top of the verify path (the application,
the transcoder, the mixins, the CLI state) fails it whatever the machine.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REGISTER, Pgf

# The patient domain, its rules and what only writers use: none is needed to verify the chain.
DOMAIN = ("pgf_events.domain.patient", "pgf_events.domain.kinds", "pgf_events.domain.values",
          "pgf_events.domain.record", "pgf_events.domain.entries", "pgf_events.domain.rules",
          "pgf_events.domain.integrity", "pgf_events.domain.review", "pgf_events.domain.lock",
          "pgf_events.domain.imports", "pgf_events.commands", "pgf_events.topics", "pgf_events.protocol")

PROBE = """
import json, os, sys
from pgf_events.cli import main
sys.argv = ["pgf", *sys.argv[1:]]
try:
    main()
    code = 0
except SystemExit as e:
    code = e.code
with open(os.environ["PGF_PROBE_OUT"], "w") as out:
    json.dump(sorted(m for m in sys.modules if m.startswith("pgf_events")), out)
sys.exit(code)
"""


def run_pgf(tmp_path: Path, *args: str, key: str | None = None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``pgf ARGS`` in a new interpreter: its result, and every pgf_events module it imported."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "PGF_PROBE_OUT": str(out)}
    env.pop("PGF_CIPHER_KEY", None)
    env.pop("PGF_DB", None)
    if key is not None:
        env["PGF_CIPHER_KEY"] = key
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                            timeout=120, cwd=Path(__file__).parents[2])
    return result, set(json.loads(out.read_text()))


def loaded_domain(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == d or m.startswith(d + ".") for d in DOMAIN))


def _store(tmp_path: Path, *, key: str | None = None, controlled: bool = False) -> str:
    """A store whose first event is a patient's registration, with records, a correction and a void."""
    pgf = Pgf(f"sqlite:///{tmp_path}/trial.db", user=getpass.getuser())
    env = {"PGF_CIPHER_KEY": key}
    pgf.ok("record", "register", "S001", *REGISTER, env=env)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18", env=env)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.6", env=env)
    pgf.ok("correct", "S001#2", "--set", "anc=0.5", "--reason", "transcription error", env=env)
    pgf.ok("void", "S001#3", "--reason", "entered on the wrong patient", env=env)
    if controlled:  # a user directory: every command's role is checked against it
        pgf.ok("users", "grant", getpass.getuser(), "admin", env=env)
        pgf.ok("users", "grant", getpass.getuser(), "auditor", env=env)
    return pgf.url


@pytest.mark.parametrize("case", ["open", "controlled", "encrypted"])
def test_audit_verify_never_imports_the_patient_domain(tmp_path: Path, case: str) -> None:
    key = base64.b64encode(os.urandom(32)).decode() if case == "encrypted" else None
    url = _store(tmp_path, key=key, controlled=case == "controlled")
    result, modules = run_pgf(tmp_path, "--db", url, "audit", "verify", "--json", key=key)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"] >= 5
    assert "pgf_events.application" in modules and "pgf_events.audit.verify" in modules  # the probe saw the run
    assert loaded_domain(modules) == [], "pgf audit verify imported the patient domain again"


def test_a_broken_chain_is_still_named_by_subject(tmp_path: Path) -> None:
    """Naming the broken event reads its registration: the domain is loaded then, and only then."""
    import sqlite3  # noqa: PLC0415

    url = _store(tmp_path)
    database = url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{trigger}"')
        changed = conn.execute("UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '0.6', '0.7') AS BLOB) "
                               "WHERE originator_version = 3").rowcount
    assert changed == 1
    result, modules = run_pgf(tmp_path, "--db", url, "audit", "verify")
    assert result.returncode == 1 and "chain broken at S001#3" in result.stderr, result.stderr
    assert "pgf_events.domain.patient" in modules


def test_a_store_with_a_wrong_key_is_still_refused_at_open(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    url = _store(tmp_path, key=key)
    for given, message in ((None, "is encrypted; set PGF_CIPHER_KEY"),
                           (base64.b64encode(os.urandom(32)).decode(), "wrong key")):
        result, modules = run_pgf(tmp_path, "--db", url, "audit", "verify", key=given)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert loaded_domain(modules) == []


@pytest.mark.parametrize("args", [["--version"], ["audit", "--help"]])
def test_the_version_and_group_help_import_no_domain(tmp_path: Path, args: list[str]) -> None:
    result, modules = run_pgf(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert loaded_domain(modules) == []
    assert "pgf_events.application" not in modules


def test_reading_a_patient_loads_the_domain_on_first_use(tmp_path: Path) -> None:
    """The control: the probe does see the domain when a command reads a patient."""
    url = _store(tmp_path)
    result, modules = run_pgf(tmp_path, "--db", url, "history", "S001", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"]
    assert {"pgf_events.domain.patient", "pgf_events.domain.kinds"} <= modules
