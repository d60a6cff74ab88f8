"""Users and roles: kept as events, enforced on every command, denials name the role needed."""

from __future__ import annotations

import json

import click
import pytest

from pgf_events import identity
from pgf_events.cli import cli
from pgf_events.cli.permissions import NO_STORE, need_of
from tests.conftest import REGISTER, Pgf


def leaf_paths(group: click.Group, prefix: str = "pgf") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += leaf_paths(command, f"{prefix} {name}")
        else:
            paths.append(f"{prefix} {name}")
    return paths


def test_every_command_has_a_permission_class() -> None:
    for path in leaf_paths(cli):
        if path.split(maxsplit=1)[1] not in NO_STORE:
            need_of(path)  # raises KeyError for a command nobody classified


class Site:
    """A store with an admin (the OS login 'root' in these tests) and users of every role."""

    def __init__(self, url: str):
        self.pgf = Pgf(url)

    def as_(self, login: str, *args: str, input: str | None = None) -> click.testing.Result:
        """``login`` authenticated (the harness's seam), without restating it with --user."""
        with identity.authenticator_replaced(lambda: login):
            return self.pgf.runner.invoke(cli, ["--db", self.pgf.url, *args], env={"PGF_USER": None}, input=input)


@pytest.fixture
def site(sqlite_url: str) -> Site:
    s = Site(sqlite_url)
    assert s.as_("ada", "record", "register", "S001", *REGISTER).exit_code == 0  # open store: anyone may
    assert s.as_("ada", "users", "grant", "ada", "admin", "--reason", "set-up").exit_code == 0
    for user, role in [("cora", "coordinator"), ("ivan", "investigator"), ("mona", "monitor"), ("aud", "auditor")]:
        assert s.as_("ada", "users", "grant", user, role).exit_code == 0
    return s


LAB = ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4"]


@pytest.mark.parametrize("login,allowed", [("cora", True), ("ivan", True), ("mona", False), ("aud", False),
                                           ("ada", False), ("eve", False)])
def test_only_coordinators_and_investigators_record(site: Site, login: str, allowed: bool) -> None:
    result = site.as_(login, *LAB)
    assert (result.exit_code == 0) is allowed, result.stderr
    if not allowed:
        assert "needs the coordinator or investigator role" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("login,allowed", [("cora", True), ("ivan", True), ("mona", True), ("aud", True),
                                           ("ada", False), ("eve", False)])
def test_readers(site: Site, login: str, allowed: bool) -> None:
    result = site.as_(login, "history", "S001")
    assert (result.exit_code == 0) is allowed, result.stderr


@pytest.mark.parametrize("login", ["cora", "ivan", "mona", "aud", "eve"])
def test_only_admins_manage_users(site: Site, login: str) -> None:
    result = site.as_(login, "users", "grant", "zed", "coordinator")
    assert result.exit_code == 1 and "needs the admin role" in result.stderr


def test_corrections_imports_and_demo_need_a_recording_role(site: Site) -> None:
    assert site.as_("cora", *LAB).exit_code == 0
    for args in (["correct", "S001#2", "--set", "anc=0.5", "--reason", "x"], ["void", "S001#2", "--reason", "x"],
                 ["import", "-"], ["demo", "--patients", "1"]):
        result = site.as_("mona", *args, input='{"record":"lab","subject":"S001","date":"2025-03-01","anc":1}\n')
        assert result.exit_code == 1 and "needs the coordinator or investigator role" in result.stderr, args


def test_a_typed_user_name_cannot_borrow_a_role(site: Site) -> None:
    result = site.as_("mona", "--user", "cora", *LAB)
    assert result.exit_code == 1 and "is not who is acting" in result.stderr


def test_revocation_takes_effect_and_both_are_in_the_directory_history(site: Site) -> None:
    assert site.as_("ada", "users", "revoke", "cora", "coordinator", "--reason", "left the site").exit_code == 0
    assert "needs the coordinator or investigator role" in site.as_("cora", *LAB).stderr
    listed = json.loads(site.as_("aud", "users", "list", "--json").stdout)
    assert {(r["user"], r["role"]) for r in listed} == {("ada", "admin"), ("ivan", "investigator"),
                                                        ("mona", "monitor"), ("aud", "auditor")}
    assert site.as_("mona", "users", "list").exit_code == 1


def test_the_last_admin_cannot_be_revoked_and_roles_are_validated(site: Site) -> None:
    assert "last admin" in site.as_("ada", "users", "revoke", "ada", "admin").stderr
    assert "unknown role" in site.as_("ada", "users", "grant", "x", "superuser").stderr


def test_the_first_grant_must_be_an_admin(sqlite_url: str) -> None:
    s = Site(sqlite_url)
    s.as_("ada", "record", "register", "S001", *REGISTER)
    result = s.as_("ada", "users", "grant", "cora", "coordinator")
    assert result.exit_code == 1 and "first grant must make someone an admin" in result.stderr
