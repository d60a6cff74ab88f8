"""The Starlette application behind ``pgf serve``: read-only JSON and a Server-Sent Events feed.

Database work runs in worker threads; catching the projections up is serialised by the feed's
lock (a :class:`ProjectionStore` keeps per-process caches), reads run side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pgf_events import __version__
from pgf_events.domain.errors import AccessDenied, PatientNotFoundError, PgfError, StoreError, ValidationError
from pgf_events.feed import ChangeFeed, check_position, check_projection
from pgf_events.feed.api import MAX_POSITION
from pgf_events.formatting import to_json
from pgf_events.projections.queries import patient_status
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.verify import last_check, verified_note
from pgf_events.serve.auth import Authenticate, PostgresLoginAuth, TokenAuth
from pgf_events.serve.openapi import openapi_document
from pgf_events.serve.pulse import Pulse
from pgf_events.store import StoreConfig
from pgf_events.web.app import is_web_path, web_routes
from pgf_events.web.core import TimeTravel, error_page
from pgf_events.web.readers import cohort
from pgf_events.web.session import IDLE_MINUTES, PasswordSignIn, Sessions, TokenSignIn

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 1000  # what EventSource clients wait before reconnecting
SSE_PAGE = 500
CLOSING_CHECK = 0.5  # how quickly open streams notice the server shutting down
PATHS = ("/health", "/patients/{subject}", "/reports/{name}", "/changes", "/openapi.json")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content).encode("utf-8")


def _error(status: int, message: str) -> JSON:
    return JSON({"error": message}, status_code=status)


def build_app(feed: ChangeFeed, *, keepalive: float = KEEPALIVE_SECONDS, interval: float | None = None,
              closing: Callable[[], bool] = lambda: False, server_url: str | None = None,
              auth: Callable[[Request], str] | None = None, allowed_hosts: Sequence[str] | None = None,
              idle_minutes: float = IDLE_MINUTES) -> Starlette:
    """``closing`` tells open streams that the server is shutting down (uvicorn's ``should_exit``);
    ``auth`` authenticates each API request (:mod:`.auth`) and decides how people sign in to the web
    workspace (:mod:`pgf_events.web`, mounted only with an ``auth``); ``allowed_hosts`` is the
    Host-header allowlist; ``idle_minutes`` ends a web session left idle that long."""
    sessions = _sessions(feed, auth, idle_minutes)

    async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    def locked(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            with feed.lock:
                return fn(*args)
        return run

    async def health(request: Request) -> Response:
        def look() -> dict[str, Any]:
            return {"status": "ok", "store": feed.app.store.display,
                    "head": feed.app.recorder.max_notification_id() or 0, "feed_position": feed.head(),
                    "protocol_version": feed.app.protocol.version, "version": __version__}
        return JSON(await in_thread(look))

    def as_asker(request: Request) -> frozenset[str] | None:
        """Under the feed's lock: the application acts for the authenticated user (their roles and
        site scope), so a site-scoped grant is refused another site's patient and sees only its
        sites in reports."""
        user = getattr(request.state, "user", None)
        if user is not None:
            feed.app.authorise(user, "read")
        return feed.app.site_scope if user is not None else None

    async def patient(request: Request) -> Response:
        def status(subject: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
            as_asker(request)
            return patient_status(feed.app, subject, store=feed.store)[0], last_check(feed.store)
        return _verified(*await in_thread(locked(status), request.path_params["subject"]))

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in PROJECTIONS:
            return _error(404, f"no report {name!r}; choose from {', '.join(PROJECTIONS)}")

        def build() -> tuple[dict[str, Any], dict[str, Any] | None]:
            as_asker(request)
            check = last_check(feed.store, [name])
            return {**cohort(feed.app, feed.store, name, TimeTravel()), "read_models_verified": check}, check
        return _verified(*await in_thread(locked(build)))

    async def changes(request: Request) -> Response:
        scope = await in_thread(locked(as_asker), request)
        if scope is not None:
            raise AccessDenied(f"{request.state.user} may read only site {', '.join(sorted(scope))}; "
                               "the change feed carries every site's patients")
        try:
            after = _position(request.query_params.get("after", "0"), "after")
            last_id = request.headers.get("last-event-id")
            if last_id is not None and last_id.strip():
                after = _position(last_id, "Last-Event-ID")
            projection = check_projection(request.query_params.get("projection") or None)
        except ValidationError as e:
            return _error(400, str(e))
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(_events(request.app.state.pulse, after, projection), headers=headers,
                                 media_type="text/event-stream")

    async def _events(pulse: Pulse, after: int, projection: str | None) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        while not closing():
            seen = pulse.generation  # before reading: a wake-up during the read is not lost
            page = await in_thread(feed.page, after, projection, SSE_PAGE)
            for change in page:
                yield f"id: {change.position}\ndata: {change.to_line()}\n\n"
                after = change.position
            if len(page) == SSE_PAGE:
                continue
            deadline = loop.time() + keepalive
            while not closing():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    yield ": keep-alive\n\n"
                    break
                if await pulse.wait(seen, min(remaining, CLOSING_CHECK)):
                    break

    async def openapi(request: Request) -> Response:
        return JSON(openapi_document(server_url))

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if sessions is not None and is_web_path(request.url.path):  # a person's browser: a page, not JSON
            return error_page(request, exc.status_code, f"there is no page {request.url.path}",
                              seat=sessions.current(request))
        return _error(exc.status_code, exc.detail)

    async def pgf_error(request: Request, exc: Exception) -> Response:
        status = (404 if isinstance(exc, PatientNotFoundError) else 503 if isinstance(exc, StoreError)
                  else 403 if isinstance(exc, AccessDenied) else 400)
        return _error(status, " ".join(str(exc).split()))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pulse = Pulse(feed, asyncio.get_running_loop(), interval=interval)
        pulse.start()
        app.state.pulse = pulse
        try:
            yield
        finally:
            await run_in_threadpool(pulse.stop)
            if sessions is not None:
                await run_in_threadpool(sessions.close_all)

    routes: list[BaseRoute] = [
        Route("/health", health), Route("/patients/{subject}", patient), Route("/reports/{name}", report),
        Route("/changes", changes), Route("/openapi.json", openapi),
    ]
    assert tuple(getattr(r, "path", "") for r in routes) == PATHS
    if sessions is not None:
        routes += web_routes(sessions)
    middleware = []
    if allowed_hosts is not None:  # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    if auth is not None:
        middleware.append(Middleware(Authenticate, check=auth, pages=is_web_path))
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                     exception_handlers={HTTPException: not_found, PgfError: pgf_error})


def _sessions(feed: ChangeFeed, auth: Any, idle_minutes: float) -> Sessions | None:
    """How people sign in to the web workspace: as the API's authenticator authenticates them."""
    if isinstance(auth, TokenAuth):
        return Sessions(TokenSignIn(auth.user, auth.token, feed.app, feed.lock, feed.store), idle_minutes=idle_minutes)
    if isinstance(auth, PostgresLoginAuth):
        store, protocol = feed.app.store, feed.app.protocol
        return Sessions(PasswordSignIn(lambda login, password: _open_as(store, protocol, login, password)),
                        idle_minutes=idle_minutes)
    return None


def _open_as(store: StoreConfig, protocol: Any, login: str, password: str) -> Any:
    """The store opened with ``login``'s own database credentials (the database checks the password)."""
    from pgf_events.application import TrialConduct  # noqa: PLC0415 - PostgreSQL web sign-in only

    env = {**store.env, "POSTGRES_USER": login, "POSTGRES_PASSWORD": password}
    return TrialConduct(attrs.evolve(store, url=store.display, env=env), protocol)


def _verified(doc: dict[str, Any], check: dict[str, Any] | None) -> JSON:
    """An answer read from the read models, with a header saying when they were last verified."""
    return JSON(doc, headers={"X-Read-Models-Verified": verified_note(check)})


def _position(text: str, name: str) -> int:
    shown = text if len(text) <= 40 else text[:37] + "..."
    try:
        return check_position(int(text.strip()))
    except (ValueError, ValidationError):  # not a number, or out of range (negative, beyond BIGINT)
        raise ValidationError(f"{name} must be a feed position (a whole number from 0 to {MAX_POSITION}), "
                              f"not {shown!r}") from None
