"""What every page handler gets: the signed-in viewer, the time-travel settings, and a renderer.

A handler is ``async def handler(page: Page) -> Response``; :func:`page` turns it into a Starlette
endpoint that signs the visitor in (or redirects to ``/signin``), checks the CSRF token of every
POST, reads ``?as_of=`` and ``?cutoff=`` from the URL, and turns a refusal or a bad input into an
HTML error page with the right status.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pgf_events.domain.errors import AccessDenied, PatientNotFoundError, PgfError, StoreError, ValidationError
from pgf_events.domain.parsing import parse_as_of, parse_date
from pgf_events.domain.users import PERMISSIONS, ROLES
from pgf_events.formatting import show
from pgf_events.gc_tuning import fewer_collections

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct
    from pgf_events.web.session import Sessions

HERE = Path(__file__).parent
NAV = (("dashboard", "/", "Dashboard"), ("worklist", "/worklist", "Worklist"),
       ("patients", "/patients", "Patients"), ("audit", "/audit", "Audit"))
SECURITY_HEADERS = {
    # Inline SVG figures may carry style attributes; scripts only from this server (there are none inline).
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # patient data: never kept by the browser or a proxy
}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)


def stamp(value: Any) -> str:
    """A date-time as ``2025-03-01 14:30Z``, a date as ISO, nothing as nothing."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
    return "" if value is None else value.isoformat() if isinstance(value, date) else str(value)


def anchor(ref: Any) -> str:
    """``S001#5`` -> ``ev-5``: the history row of that event on the patient page."""
    return "ev-" + str(ref).rpartition("#")[2]


templates.filters.update(stamp=stamp, show=show, anchor=anchor)


class Forbidden(PgfError):
    """The viewer's role does not allow this page or action."""


@attrs.frozen
class Viewer:
    """Who is looking: the login, the pgf roles held (every role on an open store) and the sites
    (None: every site)."""

    user: str
    roles: frozenset[str]
    sites: frozenset[str] | None

    def may(self, need: str) -> bool:
        return bool(self.roles & PERMISSIONS[need])

    def sees(self, site: Any) -> bool:
        return self.sites is None or str(site).upper() in self.sites

    @property
    def scope(self) -> str:
        return "all sites" if self.sites is None else "site " + ", ".join(sorted(self.sites))


@attrs.frozen
class TimeTravel:
    """``as_of``: what the store knew at that time (recording time); ``cutoff``: the clinical data
    cut-off date. Both live in the URL, so a link reproduces what someone saw."""

    as_of: datetime | None = None
    cutoff: date | None = None
    as_of_text: str = ""
    cutoff_text: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> TimeTravel:
        as_of_text = (query.get("as_of") or "").strip()
        cutoff_text = (query.get("cutoff") or "").strip()
        as_of = parse_as_of(as_of_text) if as_of_text else None
        cutoff = parse_date(cutoff_text, "cutoff") if cutoff_text else None
        return cls(as_of, cutoff, as_of_text, cutoff_text)

    @property
    def active(self) -> bool:
        return self.as_of is not None or self.cutoff is not None

    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("as_of", self.as_of_text), ("cutoff", self.cutoff_text)) if v}

    def url(self, path: str, **extra: Any) -> str:
        """``path`` with this time travel and ``extra`` query parameters (None or "" left out)."""
        query = {**self.params(), **{k: str(v) for k, v in extra.items() if v not in (None, "")}}
        return path + ("?" + urlencode(query) if query else "")


@attrs.define
class Seat:
    """A signed-in session on the server: the viewer, the application it reads and writes through
    (their own database login on PostgreSQL; the server's on SQLite), and the lock that serialises
    work on that application."""

    user: str
    app: TrialConduct
    lock: threading.Lock | threading.RLock
    csrf: str
    last_seen: float
    owns_app: bool = False  # close the application (and its read models) when the session ends
    store: Any = None  # the read models (a ProjectionStore) this session reads "now" from
    viewer: Viewer | None = None


def viewer_of(app: TrialConduct, user: str) -> Viewer:
    """Authorise ``user`` to read (AccessDenied if not), setting the application's site scope, and
    describe them: roles held (all on an open store) and sites."""
    app.authorise(user, "read")
    held = app._roles_held(user)  # noqa: SLF001 - the same answer authorise just acted on
    roles = frozenset(ROLES) if held is None else frozenset(held)
    return Viewer(user=user, roles=roles, sites=app.site_scope)


class Page:
    """One request to one page, as a signed-in viewer."""

    def __init__(self, request: Request, seat: Seat, viewer: Viewer, when: TimeTravel, form: FormData | None):
        self.request = request
        self.seat = seat
        self.viewer = viewer
        self.when = when
        self.form = form
        self.flash: list[str] = []

    @property
    def app(self) -> TrialConduct:
        return self.seat.app

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(app, *args)`` in a worker thread, holding the seat's lock, the viewer's site scope set."""
        def work() -> Any:
            with self.seat.lock:
                viewer_of(self.seat.app, self.viewer.user)  # roles may have changed: checked per unit of work
                return fn(self.seat.app, *args)
        return await run_in_threadpool(work)

    def require(self, need: str, what: str) -> None:
        if not self.viewer.may(need):
            allowed = " or ".join(sorted(PERMISSIONS[need]))
            raise Forbidden(f"{self.viewer.user} may not {what}: it needs the {allowed} role")

    def url(self, path: str, **extra: Any) -> str:
        return self.when.url(path, **extra)

    def render(self, template: str, *, code: int = 200, title: str = "", **context: Any) -> HTMLResponse:
        return render(self.request, template, code=code, title=title, page=self, viewer=self.viewer,
                      when=self.when, csrf=self.seat.csrf, kept_cutoffs=self.kept_cutoffs(), **context)

    def kept_cutoffs(self) -> list[str]:
        """The data cut-offs the store keeps rows for (``pgf projections cutoff``): offered by the
        time-travel control, as they answer at once."""
        if self.seat.store is None:
            return []
        from pgf_events.projections.cutoff_rows import declared  # noqa: PLC0415

        return [day.isoformat() for day in declared(self.seat.store)]


def render(request: Request, template: str, *, code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``; ``code`` is the HTTP status."""
    context.setdefault("page", None)
    context.setdefault("when", TimeTravel())
    with fewer_collections():  # a page of thousands of rows is many short-lived strings: no cycle scans meanwhile
        html = templates.get_template(template).render(request=request, nav=NAV, path=request.url.path,
                                                       now=datetime.now(UTC), **context)
    return HTMLResponse(html, status_code=code, headers=SECURITY_HEADERS)


Handler = Callable[[Page], Awaitable[Response]]


def page(handler: Handler, sessions: Sessions) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for a page handler (see the module docstring)."""

    async def endpoint(request: Request) -> Response:
        seat = sessions.current(request)
        if seat is None:
            return sessions.to_signin(request)
        form = None
        if request.method == "POST":
            form = await request.form()
            if not sessions.csrf_ok(seat, form):
                return error_page(request, 403, "the form's security token is missing or out of date: "
                                  "reload the page and try again", seat=seat)
        try:
            when = TimeTravel.from_query(request.query_params)
        except ValidationError as e:
            return error_page(request, 400, str(e), seat=seat)
        try:
            viewer = await run_in_threadpool(_locked_viewer, seat)
        except AccessDenied as e:
            sessions.drop(request)
            return error_page(request, 403, str(e))
        try:
            return await handler(Page(request, seat, viewer, when, form))
        except PgfError as e:
            return error_page(request, _status(e), " ".join(str(e).split()), seat=seat, viewer=viewer, when=when)

    endpoint.__name__ = handler.__name__
    return endpoint


def _locked_viewer(seat: Seat) -> Viewer:
    with seat.lock:
        seat.viewer = viewer_of(seat.app, seat.user)
        return seat.viewer


def _status(e: PgfError) -> int:
    if isinstance(e, AccessDenied | Forbidden):
        return 403
    if isinstance(e, PatientNotFoundError):
        return 404
    return 503 if isinstance(e, StoreError) else 400


def error_page(request: Request, status: int, message: str, *, seat: Seat | None = None,
               viewer: Viewer | None = None, when: TimeTravel | None = None) -> HTMLResponse:
    return render(request, "error.html", code=status, title="Error", message=message,
                  viewer=viewer or (seat.viewer if seat else None), when=when or TimeTravel(),
                  csrf=seat.csrf if seat else "")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
