"""The web workspace on PostgreSQL in a real browser: people sign in with their own database login
and password (the throw-away SCRAM cluster checks it), act as that login, and see only their sites."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGISTER, Pgf, enrol_via_cli
from tests.pgcluster import Cluster
from tests.web.conftest import Tab

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails under CI, saying why
    expect = None

from tests.feed.test_serve import Server  # noqa: E402 - after the extras are known to be installed

XQ = [a if a != "PKU" else "XQ" for a in REGISTER]


def sign_in(tab: Tab, login: str, password: str) -> None:
    tab.go("/")
    tab.page.get_by_label("Database login").fill(login)
    tab.page.get_by_label("Password").fill(password)
    tab.page.get_by_role("button", name="Sign in").click()


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


@pytest.mark.postgres
def test_sign_in_with_the_database_password_act_as_that_login_see_only_your_sites(
        browser: Any, pg_url: str, tmp_path: Path) -> None:
    cluster = Cluster.session()
    for login in ("ada", "mona", "cora", "aud"):
        cluster.ensure_login(login)
    pgf = Pgf(pg_url)
    enrol_via_cli(pgf)  # S001 at PKU
    pgf.ok("record", "register", "S002", *XQ)
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up")
    pgf.ok("users", "grant", "mona", "monitor", "--site", "PKU", "--reason", "PKU monitor", user="ada")
    pgf.ok("users", "grant", "cora", "coordinator", "--site", "PKU", "--reason", "PKU coordinator", user="ada")
    pgf.ok("users", "grant", "aud", "auditor", "--reason", "audit", user="ada")
    with Server(Cluster.login_url(pg_url, "aud"), tmp_path) as srv:
        mona = Tab(browser, srv.base, "pg-monitor")
        page = mona.page
        sign_in(mona, "mona", "not-her-password")
        expect(page.get_by_role("alert")).to_contain_text("the database login or password is wrong")
        sign_in(mona, "mona", cluster.password("mona"))
        expect(page).to_have_url(srv.base + "/")
        expect(page.locator(".who")).to_contain_text("mona (monitor; site PKU)")
        mona.go("/patients")
        assert page.locator("table tbody tr td:first-child").all_inner_texts() == ["S001"]
        mona.shot("patients")
        assert mona.get("/patient/S002").status == 403
        # A query raised in the browser is recorded as mona's own login.
        mona.go("/patient/S001")
        page.get_by_label("On event").select_option("S001#2")
        page.get_by_label("Question").fill("Consent form version?")
        page.get_by_role("button", name="Raise query").click()
        expect(page.get_by_role("status").filter(has_text="Query raised.")).to_be_visible()
        query = page.locator("article.query").filter(has_text="Consent form version?")
        expect(query).to_contain_text("raised by mona")
        assert query.get_by_role("button", name=re.compile("^Answer")).count() == 0
        mona.shot("patient")
        # The API answers mona as mona: her site only.
        assert mona.get("/patients/S002", headers=basic("mona", cluster.password("mona"))).status == 403
        report = mona.get("/reports/eligibility", headers=basic("mona", cluster.password("mona"))).json()
        assert [r["subject"] for r in report["rows"]] == ["S001"]
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile("/signin"))
        mona.close()
        # The site's coordinator answers it, and may not close it.
        cora = Tab(browser, srv.base, "pg-coordinator")
        sign_in(cora, "cora", cluster.password("cora"))
        cora.go("/patient/S001")
        query = cora.page.locator("article.query").filter(has_text="Consent form version?")
        query.get_by_label("Answer").fill("Version 3, signed 2025-02-18.")
        query.get_by_role("button", name=re.compile("^Answer")).click()
        expect(cora.page.get_by_role("status").filter(has_text="Answer recorded.")).to_be_visible()
        query = cora.page.locator("article.query").filter(has_text="Consent form version?")
        expect(query).to_contain_text("answer by cora")
        assert query.get_by_role("button", name=re.compile("^Close")).count() == 0
        assert cora.page.locator("#sdv-form").count() == 0  # SDV is the monitor's
        cora.close()
