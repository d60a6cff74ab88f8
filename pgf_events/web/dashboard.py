"""``/``: the cohort dashboard (issue 17 item 2). Its figures are pure SVG functions in
:mod:`pgf_events.web.figures`."""

from __future__ import annotations

from starlette.responses import Response

from pgf_events.web.core import Page


async def dashboard(page: Page) -> Response:
    return page.render("dashboard.html", title="Dashboard")


PAGES = [("/", dashboard, ("GET",))]
