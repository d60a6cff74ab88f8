"""The web workspace's routes, mounted into ``pgf serve``'s Starlette app (:mod:`pgf_events.serve.app`).

Each page module lists its pages in ``PAGES``: ``(path, handler, methods)``. Add a module to
:data:`PAGE_MODULES` and its pages are registered behind sign-in (see :func:`.core.page`).
"""

from __future__ import annotations

from types import ModuleType

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pgf_events.web import audit, dashboard, patient, worklist
from pgf_events.web.core import HERE, page, templates
from pgf_events.web.session import Sessions

PAGE_MODULES: tuple[ModuleType, ...] = (dashboard, worklist, patient, audit)


def is_web_path(path: str) -> bool:
    """Whether ``path`` is a page (the session decides who may see it) rather than the JSON API
    (HTTP Basic or the bearer token decides)."""
    return not (path in ("/health", "/changes", "/openapi.json") or path.startswith(("/patients/", "/reports/")))


def web_routes(sessions: Sessions) -> list[BaseRoute]:
    for name in templates.list_templates():  # compiled now, not on the first request of each page
        templates.get_template(name)
    routes: list[BaseRoute] = [*sessions.routes(),
                               Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    for module in PAGE_MODULES:
        for path, handler, methods in module.PAGES:
            routes.append(Route(path, page(handler, sessions), methods=list(methods)))
    return routes
