"""The cohort dashboard in a real browser (Debian's Chromium via Playwright) over a real ``pgf
serve`` on the demo store: every figure drawn and named for screen readers, the cut-off control
changing the figures and the URL, the print layout (what a DSMB member prints), no console error.
Screenshots: tests/web/artifacts/dashboard-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Tab

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails under CI, saying why
    expect = None

from tests.feed.procs import run_pgf  # noqa: E402
from tests.feed.test_serve import Server  # noqa: E402 - after the extras are known to be installed

FIGURES = {"consort": "CONSORT flow of patients", "enrolment": "Cumulative enrolment, all sites and by site",
           "endpoints": "Primary and key secondary endpoints with 95% confidence intervals",
           "km": "Kaplan–Meier overall and disease-free survival with 95% CI bands",
           "incidence": "Cumulative incidence (Aalen–Johansen, death competing) with 95% CI bands",
           "swimmer": "MSC dosing by patient (swimmer plot)"}


@pytest.fixture
def server(demo_copy: str, tmp_path: Path) -> Iterator[Server]:
    with Server(demo_copy, tmp_path) as srv:
        yield srv


def _enrolled(tab: Tab) -> int:
    return int(tab.page.locator('#consort g.stage[data-label="Enrolled"]').get_attribute("data-n") or "")


def test_the_dashboard_draws_every_figure_time_travels_and_prints(browser: Any, server: Server) -> None:
    tab = Tab(browser, server.base, "dashboard")
    page = tab.page
    tab.go(f"/?token={server.headers['Authorization'].split()[1]}")
    expect(page).to_have_url(server.base + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cohort dashboard")
    for ident, title in FIGURES.items():
        figure = page.get_by_role("img", name=title)
        expect(figure).to_be_visible()
        assert figure.get_attribute("id") == ident
        box = figure.bounding_box()
        assert box is not None and box["width"] > 500, (ident, box)  # drawn at a readable size
    expect(page.get_by_role("table", name="Serious adverse events")).to_be_visible()
    assert page.locator("#km g.at-risk text").count() > 4
    now = _enrolled(tab)
    assert now == 68
    tab.shot("now")
    # The figure list is a keyboard path to each figure.
    page.get_by_role("link", name="Overall and disease-free survival").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.base + "/#os-dfs")

    page.get_by_label("Data cut-off").fill("2024-09-30")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/\?(as_of=&)?cutoff=2024-09-30$"))  # the form's empty as-of may come too
    assert 0 < _enrolled(tab) < now
    expect(page.get_by_text("Every patient is evaluated as of the data cut-off 2024-09-30.")).to_be_visible()
    tab.shot("cutoff")

    page.emulate_media(media="print")
    expect(page.locator('nav[aria-label="Main"]')).to_be_hidden()
    expect(page.locator("nav.toc")).to_be_hidden()
    for title in FIGURES.values():
        expect(page.get_by_role("img", name=title)).to_be_visible()
    tab.shot("print")
    tab.close()  # fails on any console error


def test_a_declared_cut_off_is_one_click_away(browser: Any, demo_copy: str, tmp_path: Path) -> None:
    """A data manager declared the DSMB's cut-off: the time-travel bar offers it as a link (keyboard
    reachable) and as a suggestion in the date field; following it shows the cohort at that date,
    without the "not declared" note that an arbitrary date gets."""
    declared = run_pgf(demo_copy, "projections", "cutoff", "2024-09-30")  # the real CLI, as the OS account
    assert declared.returncode == 0, declared.stderr
    with Server(demo_copy, tmp_path) as server:
        tab = Tab(browser, server.base, "dashboard")
        page = tab.page
        tab.go(f"/?token={server.headers['Authorization'].split()[1]}")
        now = _enrolled(tab)
        link = page.get_by_role("link", name="2024-09-30")
        expect(link).to_be_visible()
        assert page.locator("#tt-kept-cutoffs option").evaluate_all("os => os.map(o => o.value)") == ["2024-09-30"]
        link.focus()
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/\?cutoff=2024-09-30$"))
        assert 0 < _enrolled(tab) < now
        expect(page.locator("p.tt-note")).not_to_contain_text("not declared")
        tab.shot("declared-cutoff")
        page.get_by_label("Data cut-off").fill("2024-10-31")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("p.tt-note")).to_contain_text("pgf projections cutoff 2024-10-31")
        tab.close()  # fails on any console error
