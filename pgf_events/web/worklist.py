"""``/worklist`` (what is due, from ``pgf due``) and ``/patients`` (``pgf patients``), filterable by
site and status (issue 17 item 3)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pgf_events.projections.patients import STATUSES
from pgf_events.projections.worklist import RANK
from pgf_events.web.core import Page
from pgf_events.web.readers import patients, worklist_items

WHAT = ("dose", "labs", "sae", "query", "signature")


def _choice(page: Page, name: str, allowed: tuple[str, ...] | list[str]) -> str:
    value = page.request.query_params.get(name, "")
    return value if value in allowed else ""


async def worklist_page(page: Page) -> Response:
    day, items = await page.run(lambda app: worklist_items(app, page.when, page.seat.store))
    sites = sorted({str(i["site"]) for i in items})
    site, status, what = _choice(page, "site", sites), _choice(page, "status", list(RANK)), _choice(page, "what", WHAT)
    shown = [i for i in items if (not site or i["site"] == site) and (not status or i["status"] == status)
             and (not what or i["what"] == what)]
    return page.render("worklist.html", title="Worklist", items=shown, total=len(items), day=day, sites=sites,
                       statuses=list(RANK), whats=WHAT, site=site, status=status, what=what,
                       filters={"site": site, "status": status, "what": what})


async def patients_page(page: Page) -> Response:
    def read(app: Any) -> list[dict[str, Any]]:
        return patients(app, page.seat.store, page.when)
    rows = await page.run(read)
    sites = sorted({str(r["site"]) for r in rows})
    site, status = _choice(page, "site", sites), _choice(page, "status", STATUSES)
    shown = [r for r in rows if (not site or r["site"] == site) and (not status or r["status"] == status)]
    return page.render("patients.html", title="Patients", rows=shown, total=len(rows), sites=sites,
                       statuses=STATUSES, site=site, status=status, filters={"site": site, "status": status})


PAGES = [("/worklist", worklist_page, ("GET",)), ("/patients", patients_page, ("GET",))]
