"""The cohort dashboard (``/``) over real HTTP on a demo store: every figure in the page with the
numbers ``pgf report`` gives, time travel in the URL, and a site-scoped monitor seeing only their site."""

from __future__ import annotations

import getpass
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Pgf

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from tests.feed.test_serve import Server  # noqa: E402 - after the extras are known to be installed

FIGURES = ("consort", "enrolment", "endpoints", "km", "incidence", "swimmer")
OS_USER = getpass.getuser()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Pgf:
    pgf = Pgf(f"sqlite:///{tmp_path_factory.mktemp('dash')}/demo.db", user=OS_USER)
    pgf.ok("demo", "--patients", "16", "--seed", "3")
    return pgf


def _served(url: str, tmp: Path) -> Iterator[tuple[Server, httpx.Client]]:
    with Server(url, tmp) as srv, httpx.Client(base_url=srv.base, timeout=60, follow_redirects=False) as c:
        token = srv.headers["Authorization"].split()[1]
        assert c.get(f"/?token={token}").status_code == 303
        yield srv, c


@pytest.fixture(scope="module")
def signed_in(demo: Pgf, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, httpx.Client]]:
    yield from _served(demo.url, tmp_path_factory.mktemp("serve"))


def _svgs(html: str) -> dict[str, ET.Element]:
    found = {}
    for svg in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        root = ET.fromstring(svg)
        found[root.get("id")] = root
    return found


def _stage(svg: ET.Element, label: str) -> int:
    (g,) = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("data-label") == label]
    return int(g.get("data-n", ""))


def _report(pgf: Pgf, name: str, *args: str) -> dict:
    return json.loads(pgf.ok("report", name, "--json", *args).stdout)


def test_the_dashboard_shows_every_figure_with_the_reports_numbers(demo: Pgf, signed_in) -> None:
    _, c = signed_in
    page = c.get("/")
    assert page.status_code == 200
    svgs = _svgs(page.text)
    assert set(FIGURES) <= set(svgs)
    for svg in svgs.values():
        assert svg.get("role") == "img" and svg.get("aria-labelledby")
    eligibility = _report(demo, "eligibility")["summary"]
    assert _stage(svgs["consort"], "Enrolled") == eligibility["enrolled"]
    assert _stage(svgs["consort"], "Screened") == eligibility["screened"]
    survival = _report(demo, "survival")["summary"]
    at_risk = [t.text for t in svgs["km"].iter("{http://www.w3.org/2000/svg}text")
               if t.get("data-day") == str(survival["horizon_days"])]
    assert at_risk == [str(survival["os_1y"]["at_risk"]), str(survival["dfs_1y"]["at_risk"])]
    safety = _report(demo, "safety")["summary"]
    assert f"Serious adverse events and their reporting clocks ({safety['serious_adverse_events']})" in page.text
    assert 'href="/patient/' in page.text  # the SAE listing links each patient's page


def test_the_cutoff_and_as_of_in_the_url_change_what_is_shown(demo: Pgf, signed_in) -> None:
    _, c = signed_in
    cut = _report(demo, "eligibility", "--cutoff", "2025-01-31")["summary"]
    page = c.get("/?cutoff=2025-01-31")
    assert page.status_code == 200 and "data cut-off 2025-01-31" in page.text
    assert _stage(_svgs(page.text)["consort"], "Enrolled") == cut["enrolled"]
    assert 'href="/patient/' not in page.text or "cutoff=2025-01-31" in page.text  # links keep the time travel
    before = c.get("/?as_of=2000-01-01")  # before anything was recorded
    assert before.status_code == 200
    assert _stage(_svgs(before.text)["consort"], "Registered") == 0
    assert "nobody enrolled yet" in before.text
    assert c.get("/?cutoff=not-a-date").status_code == 400


def test_a_declared_cut_off_is_offered_and_answers_as_the_derived_one(demo: Pgf, signed_in) -> None:
    _, c = signed_in
    day = "2025-02-28"
    derived = {name: _report(demo, name, "--cutoff", day) for name in ("eligibility", "survival")}  # before declaring
    assert "Declared cut-offs" not in c.get("/").text
    other = "2025-02-27"  # not looked at at the declared day before it is declared (the server keeps what it derived)
    assert f"<code>pgf projections cutoff {other}</code> keeps its rows" in c.get(f"/patients?cutoff={other}").text
    demo.ok("projections", "cutoff", day)
    try:
        now = c.get("/worklist")
        assert f'<option value="{day}">' in now.text and f'href="/worklist?cutoff={day}"' in now.text
        page = c.get(f"/?cutoff={day}")  # the server's first look at it: read from the kept rows
        assert page.status_code == 200 and 'aria-current="true">' + day in page.text
        assert "a cut-off not declared" not in page.text
        consort = _svgs(page.text)["consort"]
        summary = derived["eligibility"]["summary"]
        assert (_stage(consort, "Screened"), _stage(consort, "Enrolled")) == (summary["screened"], summary["enrolled"])
        survival = derived["survival"]["summary"]
        at_risk = [t.text for t in _svgs(page.text)["km"].iter("{http://www.w3.org/2000/svg}text")
                   if t.get("data-day") == str(survival["horizon_days"])]
        assert at_risk == [str(survival["os_1y"]["at_risk"]), str(survival["dfs_1y"]["at_risk"])]
    finally:
        demo.ok("projections", "cutoff", day, "--drop")
    assert "Declared cut-offs" not in c.get("/patients").text


def test_a_monitor_of_one_site_sees_only_that_sites_patients(demo: Pgf, tmp_path: Path) -> None:
    scoped = Pgf(f"sqlite:///{tmp_path}/scoped.db", user=OS_USER)
    Path(tmp_path / "scoped.db").write_bytes(Path(demo.url.removeprefix("sqlite:///")).read_bytes())
    rows = _report(scoped, "eligibility")["rows"]
    site = rows[0]["site"]
    mine = [r for r in rows if r["site"] == site]
    assert len(mine) < len(rows)
    scoped.ok("users", "grant", "ada", "admin", "--reason", "set-up", user="ada")
    scoped.ok("users", "grant", OS_USER, "monitor", "--site", site, "--reason", "one site", user="ada")
    for _, c in _served(scoped.url, tmp_path):
        page = c.get("/")
        assert page.status_code == 200
        consort = _svgs(page.text)["consort"]
        assert _stage(consort, "Registered") == len(mine)
        assert _stage(consort, "Enrolled") == sum(1 for r in mine if r["enrolled"])
        others = {r["subject"] for r in rows} - {r["subject"] for r in mine}
        assert not any(re.search(rf"\b{s}\b", page.text) for s in others)
