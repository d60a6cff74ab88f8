"""Identity from an authenticator, never from the environment (issue 12, item 1).

SQLite: the OS account of the process's real uid; PostgreSQL: the database login (session_user).
``--user``/``PGF_USER`` may only restate it: anything else is ``Error:``, exit 1, nothing written.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys

import pytest
from click.testing import Result

from pgf_events import identity
from pgf_events.application import TrialConduct
from pgf_events.cli import cli
from pgf_events.domain.errors import AccessDenied
from pgf_events.store import parse_url
from tests.conftest import REGISTER, Pgf, enrol_via_cli, fingerprint

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]
ME = pwd.getpwuid(os.getuid()).pw_name


def as_login(pgf: Pgf, login: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """``login`` authenticated (OS account via the seam, or its database login), no --user given."""
    with identity.authenticator_replaced(lambda: login):
        return pgf.runner.invoke(cli, ["--db", pgf.url_for(login), *args], env=env)


def refused(pgf: Pgf, result: Result, before: tuple[int, str]) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fingerprint(pgf.url) == before, "a refused command wrote something"
    return result.stderr


def test_the_os_account_comes_from_the_uid_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME", "PGF_USER"):
        monkeypatch.setenv(name, "dr.wang")
    assert identity.os_account() == ME != "dr.wang"


def test_pgf_user_cannot_sign_as_someone_else(pgf_any: Pgf) -> None:
    """The attack: ``LOGNAME=dr.wang pgf sign S001 --meaning approval`` (or PGF_USER, or --user)."""
    enrol_via_cli(pgf_any)
    before = fingerprint(pgf_any.url)
    env = {"PGF_USER": "dr.wang", "LOGNAME": "dr.wang", "USER": "dr.wang"}
    text = refused(pgf_any, as_login(pgf_any, "mallory", "sign", "S001", "--meaning", "approval", env=env), before)
    assert "'dr.wang' is not who is acting: you are 'mallory'" in text
    text = refused(pgf_any, as_login(pgf_any, "mallory", "--user", "dr.wang", "record", "lab", "S001",
                                     "--date", "2025-03-01", "--anc", "0.4"), before)
    assert "is not who is acting" in text
    # LOGNAME/USER alone change nothing: the entry is mallory's.
    result = as_login(pgf_any, "mallory", "record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4",
                      env={"LOGNAME": "dr.wang", "USER": "dr.wang", "PGF_USER": None})
    assert result.exit_code == 0, result.stderr
    history = json.loads(pgf_any.ok("history", "S001", "--json").stdout)
    assert {e["recorded_by"] for e in history["events"]} == {"coordinator1", "mallory"}


def test_restating_who_you_are_is_fine(pgf_any: Pgf) -> None:
    assert as_login(pgf_any, "li.na", "--user", "li.na", "record", "register", "S001", *REGISTER).exit_code == 0
    history = json.loads(pgf_any.ok("history", "S001", "--json").stdout)
    assert history["events"][0]["recorded_by"] == "li.na"


@pytest.mark.postgres
def test_on_postgresql_the_login_is_who_acts_even_through_the_python_api(pg_url: str) -> None:
    app = TrialConduct(parse_url(pg_url))
    try:
        assert app.session_user() == app.acting_user() == "coordinator1"
        with pytest.raises(AccessDenied, match="not the database login"):
            app.record("register", "S001", {"site": "PKU", "birth_date": "1980-02-03", "sex": "F",
                                            "weight_kg": 61, "transplant_date": "2025-01-10"}, user="dr.wang")
    finally:
        app.close()


def test_a_real_process_is_its_os_account_whatever_its_environment(store_url: str) -> None:
    """No seam here: a child process, its environment set by an impostor."""
    env = {**os.environ, "USER": "dr.wang", "LOGNAME": "dr.wang"}
    env.pop("PGF_USER", None)
    done = subprocess.run([*PGF, "--db", store_url, "record", "register", "S001", *REGISTER], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    refused_run = subprocess.run([*PGF, "--db", store_url, "record", "consent", "S001", "--date", "2025-02-18"],
                                 env={**env, "PGF_USER": "dr.wang"}, capture_output=True, text=True)
    assert refused_run.returncode == 1 and "is not who is acting" in refused_run.stderr
    history = json.loads(subprocess.run([*PGF, "--db", store_url, "history", "S001", "--json"], env=env,
                                        capture_output=True, text=True, check=True).stdout)
    expected = "coordinator1" if store_url.startswith("postgres") else ME  # the URL's login, or the OS account
    assert [e["recorded_by"] for e in history["events"]] == [expected]
