"""The web workspace in a real browser over a real ``pgf serve`` on the demo store (SQLite: the
one-time token): sign in, walk every page, keyboard, labels, time travel, a query raised, answered
and closed, SDV ticked, CSV export, print styles, sign out, and a site-scoped monitor who never
sees another site (pages and API). Any console error fails the test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgf_events.identity import os_account
from tests.conftest import Pgf
from tests.web.conftest import Tab

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails under CI, saying why
    expect = None

from tests.feed.test_serve import Server  # noqa: E402 - after the extras are known to be installed

PAGES = {"dashboard": "/", "worklist": "/worklist", "patients": "/patients", "audit": "/audit"}
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(c => c.labels.length === 0 && !c.getAttribute('aria-label')).map(c => c.outerHTML)"""


@pytest.fixture
def server(demo_copy: str, tmp_path: Path) -> Iterator[Server]:
    with Server(demo_copy, tmp_path) as srv:
        yield srv


def srv_url(srv: Server, path: str) -> str:
    return srv.base + path


def token(srv: Server) -> str:
    return str(srv.headers["Authorization"].split()[1])


def signed_in(browser: Any, srv: Server, name: str) -> Tab:
    tab = Tab(browser, srv.base, name)
    tab.go("/")
    assert tab.page.url.startswith(srv.base + "/signin")
    tab.page.get_by_label("Token").fill(token(srv))
    tab.page.get_by_role("button", name="Sign in").click()
    expect(tab.page).to_have_url(srv.base + "/")
    return tab


def labelled(tab: Tab) -> None:
    assert tab.page.evaluate(UNLABELLED) == [], "every control needs a label"


def test_walk_every_page_query_sdv_time_travel_and_sign_out(browser: Any, server: Server) -> None:
    tab = signed_in(browser, server, "demo")
    page = tab.page
    for name, path in PAGES.items():
        response = tab.go(path)
        assert response.status == 200, (path, response.status)
        assert page.locator("h1").first.is_visible()
        assert page.locator('nav[aria-label="Main"] a[aria-current="page"]').inner_text() == name.capitalize()
        labelled(tab)
        tab.shot(name)
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    tab.go("/patients")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Filter the patient list by site and status: the URL carries the filters.
    page.get_by_label("Site", exact=True).select_option("WCH")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile("site=WCH"))
    sites = page.locator("table tbody tr td:nth-child(2)").all_inner_texts()
    assert sites and set(sites) == {"WCH"}
    # Time travel: a data cut-off carried by every link; fewer patients had entered by then.
    everyone = int(re.search(r"of (\d+) patients", page.locator("caption").inner_text()).group(1))  # type: ignore[union-attr]
    page.get_by_label("Data cut-off").fill("2024-06-30")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile("cutoff=2024-06-30"))
    assert "site=WCH" in page.url
    then = int(re.search(r"of (\d+) patients", page.locator("caption").inner_text()).group(1))  # type: ignore[union-attr]
    assert then < everyone
    assert page.get_by_role("link", name="Worklist").get_attribute("href") == "/worklist?cutoff=2024-06-30"
    tab.shot("patients-cutoff")
    page.get_by_role("link", name="Worklist").click()
    expect(page.locator("h1")).to_contain_text("for 2024-06-30")
    page.get_by_role("link", name="Back to now").click()
    expect(page).to_have_url(srv_url(server, "/worklist"))
    # The patient page: course figure, derived status linking to its events, history.
    tab.go("/patients?site=WCH")
    page.locator("table tbody tr td a").first.click()
    expect(page).to_have_url(re.compile("/patient/S"))
    subject = page.url.rsplit("/", 1)[1]
    assert page.locator("svg.course title").first.text_content() == f"{subject}: haematology course"
    link = page.locator("#status-h ~ .cards a[href^='#ev-']").first
    target = link.get_attribute("href")
    link.click()
    expect(page.locator(f"tr{target}")).to_be_in_viewport()
    labelled(tab)
    tab.shot("patient")
    # Raise a query on an event, answer it, close it (an open store: the OS account holds every role).
    before = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    page.get_by_label("On event").select_option(index=2)
    page.get_by_label("Question").fill("Was this sample taken before the transfusion?")
    page.get_by_role("button", name="Raise query").click()
    expect(page.get_by_role("status").filter(has_text="Query raised.")).to_be_visible()
    query = page.locator("article.query").filter(has_text="Was this sample taken").last
    qid = query.locator("h3").inner_text().split()[0]
    query.get_by_label("Answer").fill("Before: drawn at 07:00, transfused at 10:00.")
    query.get_by_role("button", name=f"Answer {qid}").click()
    expect(page.get_by_role("status").filter(has_text="Answer recorded.")).to_be_visible()
    query = page.locator("article.query").filter(has_text=qid)
    expect(query).to_contain_text("answered")
    query.get_by_role("button", name=f"Close {qid}").click()
    expect(page.get_by_role("status").filter(has_text="Query closed.")).to_be_visible()
    expect(page.locator("article.query").filter(has_text=qid).locator(".tag")).to_have_text("closed")
    # SDV: tick two records, submit, and they read verified.
    boxes = page.locator("#sdv-form input[type=checkbox]")
    ticked = [boxes.nth(0).get_attribute("value"), boxes.nth(1).get_attribute("value")]
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Mark ticked records source-verified").click()
    expect(page.get_by_role("status").filter(has_text="Source data verification recorded.")).to_be_visible()
    for ref in ticked:
        expect(page.locator(f"tr#ev-{str(ref).rpartition('#')[2]}")).to_contain_text("verified")
    tab.shot("patient-after-actions")
    # As of a moment before the query: it was not there, and nothing can be done in the past.
    tab.go(f"/patient/{subject}?as_of={before}")
    assert page.locator("article.query").filter(has_text=qid).count() == 0
    assert page.get_by_role("button", name="Raise query").count() == 0 and page.locator("#sdv-form").count() == 0
    tab.shot("patient-as-of")
    early = tab.get(f"/patient/{subject}?as_of=2000-01-01")
    assert early.status == 400 and "was not yet registered as of 2000-01-01" in early.text()
    # Audit: verify the chain (a POST, kept per log head), search the trail, export CSV.
    tab.go("/audit")
    chain = page.locator("#verification ~ .cards .card").first
    expect(chain).to_contain_text("not verified")  # nothing verified yet on this server: never says intact
    tab.shot("audit-unverified")
    page.get_by_role("button", name="Verify the chain now").click()
    expect(page.get_by_role("status").filter(has_text="The hash chain was recomputed")).to_be_visible()
    expect(chain).to_contain_text("intact at the current head")
    tab.shot("audit-verified")
    tab.go("/audit")  # a later view does not verify again, and still knows the head it verified
    expect(chain).to_contain_text("intact at the current head")
    # A new event moves the head: the page no longer calls the chain verified, and says what came since.
    tab.go(f"/patient/{subject}")
    page.get_by_label("On event").select_option(index=1)
    page.get_by_label("Question").fill("Is the weight from the day of the infusion?")
    page.get_by_role("button", name="Raise query").click()
    expect(page.get_by_role("status").filter(has_text="Query raised.")).to_be_visible()
    tab.go("/audit")
    expect(chain).to_contain_text("not verified")
    expect(chain).to_contain_text(re.compile(r"\d+ events? recorded since the last verification"))
    tab.shot("audit-stale")
    page.get_by_role("button", name="Verify the chain now").click()
    expect(chain).to_contain_text("intact at the current head")
    page.get_by_label("Patient").fill(subject)
    page.get_by_label("Event kind").fill("QueryOpened")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(f"subject={subject}"))
    expect(page.locator("#trail ~ table")).to_contain_text("Was this sample taken")
    tab.shot("audit-search")
    csv = tab.get(f"/audit/trail.csv?subject={subject}")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text().splitlines()[0].startswith("ref,subject,site")
    assert {line.split(",")[1] for line in csv.text().splitlines()[1:]} == {subject}
    # Print: the navigation and forms are not printed.
    page.emulate_media(media="print")
    expect(page.locator('nav[aria-label="Main"]')).to_be_hidden()
    page.emulate_media(media="screen")
    # Sign out: the session is gone, and a page asks to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile("/signin"))
    expect(page.get_by_role("status")).to_contain_text("signed out")
    tab.go("/worklist")
    assert "/signin" in page.url
    tab.close()


def test_a_monitor_of_one_site_never_sees_another(browser: Any, demo_copy: str, tmp_path: Path) -> None:
    me = os_account()  # SQLite: the server answers the OS account that started it
    pgf = Pgf(demo_copy, user="ada")
    pgf.ok("users", "grant", "ada", "admin", "--reason", "set-up")
    pgf.ok("users", "grant", me, "monitor", "--site", "WCH", "--reason", "WCH monitor", user="ada")
    with Server(demo_copy, tmp_path) as srv:
        tab = signed_in(browser, srv, "monitor")
        page = tab.page
        assert "monitor; site WCH" in page.locator(".who").inner_text()
        for path in ("/patients", "/worklist"):
            tab.go(path)
            sites = page.locator("table tbody tr td:nth-child(2)").all_inner_texts()
            assert sites and set(sites) == {"WCH"}, (path, sorted(set(sites)))
            assert page.get_by_label("Site", exact=True).locator("option").all_inner_texts() == \
                   ["all sites", "WCH"]
        tab.shot("monitor-patients")
        tab.go("/audit?trail=all")
        assert set(page.locator("#trail ~ table tbody tr td:nth-child(3)").all_inner_texts()) == {"WCH"}
        # The chain covers every site's events: a monitor of one site may not run it (no button; a forged POST: 403).
        assert page.get_by_role("button", name="Verify the chain now").count() == 0
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        forged = tab.context.request.post(f"{srv.base}/audit", form={"csrf": str(csrf), "action": "verify-chain"},
                                          max_redirects=0)
        assert forged.status == 403 and "may not verify the whole chain" in forged.text()
        ours = page.locator("a[href^='/patient/']").first.get_attribute("href")
        tab.go(str(ours))
        assert page.get_by_role("button", name="Raise query").is_visible()  # monitors raise and close queries
        assert page.locator("#sdv-form").count() == 1  # and tick SDV
        assert page.get_by_role("button", name=re.compile("^Answer ")).count() == 0  # the site answers
        # Another site's patient: refused on the page and in the API, with the same token.
        other = "S001"  # PKUPH in the demo
        refused = tab.get(f"/patient/{other}")
        assert refused.status == 403 and "may act only on patients of site WCH" in refused.text()
        assert tab.get(f"/audit/trail.csv?subject={other}").text().count("\n") == 1  # the header only
        api = {"Authorization": srv.headers["Authorization"]}
        assert tab.get(f"/patients/{other}", headers=api).status == 403
        report = tab.get("/reports/eligibility", headers=api)
        assert report.status == 200
        assert {row["site"] for row in report.json()["rows"]} == {"WCH"}
        assert tab.get("/changes?after=0", headers=api).status == 403
        # The forged POST: raising a query on another site's patient through our own form is refused.
        tab.go(str(ours))
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        forged = tab.context.request.post(f"{srv.base}/patient/{other}", form={
            "csrf": str(csrf), "action": "query-open", "ref": f"{other}#1", "text": "peek"}, max_redirects=0)
        assert forged.status == 403
        tab.close()
