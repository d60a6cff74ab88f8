"""Signing in and out of the web workspace, sessions and CSRF tokens.

- **PostgreSQL** (:class:`PasswordSignIn`): the user's own database login and password, checked by
  opening the store as that login; the session then works through that connection (so the database
  stamps and enforces who acts). The password is never kept.
- **SQLite** (:class:`TokenSignIn`): only the OS account that started the server, proving it with
  the one-time token printed at start (the ``?token=`` link, or pasted into the sign-in form).

The browser holds only a signed, HttpOnly, SameSite=Strict cookie naming a random session id; the
session itself (and its CSRF token) lives in this process, ends at sign-out, after
``idle_minutes`` without a request, or when the server stops.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import attrs
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pgf_events.domain.errors import AccessDenied, PgfError
from pgf_events.projections.store import ProjectionStore
from pgf_events.web.core import Seat, TimeTravel, error_page, redirect, render, viewer_of

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

COOKIE = "pgf_session"
SIGNIN_COOKIE = "pgf_signin"  # the sign-in form's CSRF token, before there is a session
IDLE_MINUTES = 30.0


class SignInFailed(Exception):
    """Credentials that do not sign anyone in (the message is safe to show)."""


class TokenSignIn:
    """SQLite: the OS account that started the server, with the token printed at start."""

    kind = "token"

    def __init__(self, user: str, token: str, app: TrialConduct, lock: threading.Lock | threading.RLock,
                 store: ProjectionStore | None = None):
        self.user, self.token, self.app, self.lock, self.store = user, token, app, lock, store

    def check(self, offered: str) -> bool:
        return bool(offered) and hmac.compare_digest(offered.encode(), self.token.encode())

    def open(self, login: str, secret: str) -> Opened:
        if not self.check(secret.strip()):
            raise SignInFailed("that is not the token printed when pgf serve started")
        with self.lock:
            viewer_of(self.app, self.user)  # AccessDenied if the account holds no read role
        return self.opened()

    def opened(self) -> Opened:
        return Opened(self.user, self.app, self.lock, False, self.store)


class PasswordSignIn:
    """PostgreSQL: the user's database login and password open the store as that login."""

    kind = "password"

    def __init__(self, open_as: Callable[[str, str], TrialConduct]):
        self.open_as = open_as

    def open(self, login: str, secret: str) -> Opened:
        login = login.strip()
        if not login or not secret:
            raise SignInFailed("enter your database login and password")
        try:
            app = self.open_as(login, secret)
        except AccessDenied:
            raise
        except PgfError:
            raise SignInFailed("the database login or password is wrong") from None
        try:
            viewer_of(app, login)
        except BaseException:
            app.close()
            raise
        return Opened(login, app, threading.RLock(), True, ProjectionStore(app))


@attrs.frozen
class Opened:
    """A sign-in that worked: who, the application they work through, its lock, whether the
    session owns (closes) it, and the read models."""

    user: str
    app: TrialConduct
    lock: threading.Lock | threading.RLock
    owns: bool
    store: ProjectionStore | None


class Sessions:
    """The signed-in sessions of one server, keyed by the random id in the signed cookie."""

    def __init__(self, signin: TokenSignIn | PasswordSignIn, *, idle_minutes: float = IDLE_MINUTES,
                 secret: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.signin = signin
        self.idle = idle_minutes * 60.0
        self.clock = clock
        self.serializer = URLSafeSerializer(secret or secrets.token_urlsafe(32), salt="pgf-web-session")
        self._seats: dict[str, Seat] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- the session of a request

    def _sid(self, request: Request, cookie: str = COOKIE) -> str | None:
        raw = request.cookies.get(cookie)
        if not raw:
            return None
        try:
            value = self.serializer.loads(raw)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def current(self, request: Request) -> Seat | None:
        sid = self._sid(request)
        if sid is None:
            return None
        with self._lock:
            seat = self._seats.get(sid)
            if seat is None:
                return None
            now = self.clock()
            if now - seat.last_seen > self.idle:
                self._end(sid)
                return None
            seat.last_seen = now
            return seat

    def csrf_ok(self, seat: Seat, form: FormData) -> bool:
        offered = form.get("csrf")
        return isinstance(offered, str) and hmac.compare_digest(offered.encode(), seat.csrf.encode())

    def drop(self, request: Request) -> None:
        sid = self._sid(request)
        if sid is not None:
            with self._lock:
                self._end(sid)

    def _end(self, sid: str) -> None:
        seat = self._seats.pop(sid, None)
        if seat is not None and seat.owns_app:
            if seat.store is not None:
                seat.store.close()
            seat.app.close()

    def close_all(self) -> None:
        with self._lock:
            for sid in list(self._seats):
                self._end(sid)

    def start(self, opened: Opened) -> str:
        sid = secrets.token_urlsafe(32)
        seat = Seat(user=opened.user, app=opened.app, lock=opened.lock, csrf=secrets.token_urlsafe(32),
                    last_seen=self.clock(), owns_app=opened.owns, store=opened.store)
        with self._lock:
            self._seats[sid] = seat
        return sid

    # ---------------------------------------------------------------- responses

    def set_cookie(self, response: Response, request: Request, name: str, value: str) -> None:
        response.set_cookie(name, self.serializer.dumps(value), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")

    def to_signin(self, request: Request, note: str = "") -> Response:
        """A page asked for without a session: a ``?token=`` link signs in (SQLite); anything else
        goes to the sign-in form, which comes back here after."""
        token = request.query_params.get("token")
        if token and isinstance(self.signin, TokenSignIn) and self.signin.check(token):
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(query) if query else "")
            response = redirect(_safe_next(target))
            self.set_cookie(response, request, COOKIE, self.start(self.signin.opened()))
            return response
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        note = note or ("ended" if self._sid(request) is not None else "")  # a cookie whose session is gone
        return redirect(TimeTravel().url("/signin", next=target if target != "/" else None, note=note or None))

    # ---------------------------------------------------------------- the sign-in and sign-out routes

    def routes(self) -> list[Route]:
        return [Route("/signin", self.signin_page, methods=["GET", "POST"]),
                Route("/signout", self.signout, methods=["POST"])]

    async def signin_page(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._signin(request)
        return self._form(request, "")

    def _form(self, request: Request, message: str, status: int = 200, login: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        note = {"ended": f"Your session ended (after {self.idle / 60:g} minutes without activity, or the server "
                          "restarted): please sign in again.",
                "out": "You are signed out."}.get(request.query_params.get("note", ""), "")
        response = render(request, "signin.html", code=status, title="Sign in", kind=self.signin.kind,
                          message=message, note=note, csrf=token, login=login,
                          next=_safe_next(request.query_params.get("next", "/")), viewer=None)
        self.set_cookie(response, request, SIGNIN_COOKIE, token)
        return response

    async def _signin(self, request: Request) -> Response:
        form = await request.form()
        expected = self._sid(request, SIGNIN_COOKIE)
        offered = form.get("csrf")
        if not expected or not isinstance(offered, str) or not hmac.compare_digest(offered.encode(), expected.encode()):
            return self._form(request, "The sign-in form expired: please try again.", 403)
        login, secret = _text(form, "login"), _text(form, "secret")
        try:
            opened = await run_in_threadpool(self.signin.open, login, secret)
        except SignInFailed as e:  # the form again, saying why (200: a page, not a challenge to the browser)
            return self._form(request, str(e), 200, login)
        except AccessDenied as e:
            return self._form(request, " ".join(str(e).split()), 403, login)
        response = redirect(_safe_next(_text(form, "next") or "/"))
        self.set_cookie(response, request, COOKIE, self.start(opened))
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    async def signout(self, request: Request) -> Response:
        seat = self.current(request)
        if seat is not None:
            form = await request.form()
            if not self.csrf_ok(seat, form):
                return error_page(request, 403, "the form's security token is missing or out of date", seat=seat)
            self.drop(request)
        response = redirect("/signin?note=out")
        response.delete_cookie(COOKIE, path="/")
        return response


def _text(form: FormData, name: str) -> str:
    value: Any = form.get(name)
    return value if isinstance(value, str) else ""


def _safe_next(target: str) -> str:
    """Only a path on this server (no scheme, no host, no //evil.example) may be the page after sign-in."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
