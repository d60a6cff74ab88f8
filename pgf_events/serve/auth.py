"""Who is asking: ``pgf serve`` authenticates every request with the store's own identities.

- **PostgreSQL**: HTTP Basic with the user's database login and password, checked by opening a
  connection to the store's database as that login (the database does the authenticating; a
  successful check is remembered for :data:`CACHE_SECONDS`, as a salted hash, never the password).
  The login must then hold a read role in the store (:meth:`TrialConduct.authorise`).
- **SQLite**: the server binds to a loopback address only and answers the OS account that started
  it; clients prove they are that account's by a random one-time token printed at start (as
  Jupyter does), sent as ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (for EventSource).

Unauthenticated requests get 401 with a ``WWW-Authenticate`` challenge; an authenticated user
without a read role gets 403. Only ``/openapi.json`` (the public description) is open; the web
workspace's pages sign people in with their own sessions (:mod:`pgf_events.web.session`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pgf_events.domain.errors import AccessDenied

CACHE_SECONDS = 60.0
OPEN_PATHS = frozenset({"/openapi.json"})


class Unauthenticated(Exception):
    """No credentials, or credentials that do not authenticate."""


class TokenAuth:
    """SQLite: the one-time token of the OS account that started the server."""

    scheme = "Bearer"

    def __init__(self, user: str, token: str | None = None):
        self.user = user
        self.token = token or secrets.token_urlsafe(32)

    def __call__(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        kind, _, value = header.partition(" ")
        offered = value.strip() if kind.lower() in ("bearer", "token") else request.query_params.get("token", "")
        if not offered or not hmac.compare_digest(offered.encode(), self.token.encode()):
            raise Unauthenticated("send the token printed when pgf serve started (Authorization: Bearer TOKEN)")
        return self.user


class PostgresLoginAuth:
    """PostgreSQL: HTTP Basic, checked by logging in to the store's database as that user."""

    scheme = "Basic"

    def __init__(self, env: dict[str, str], authorise: Callable[[str], None]):
        self.env = env
        self.authorise = authorise
        self._salt = secrets.token_bytes(16)
        self._cache: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> str:
        login, password = _basic(request.headers.get("authorization", ""))
        digest = hashlib.sha256(self._salt + login.encode() + b"\0" + password.encode()).digest()
        with self._lock:
            cached = self._cache.get(login)
        if cached is None or cached[1] < time.monotonic() or not hmac.compare_digest(cached[0], digest):
            self._login(login, password)
            self.authorise(login)
            with self._lock:
                self._cache[login] = (digest, time.monotonic() + CACHE_SECONDS)
        return login

    def _login(self, login: str, password: str) -> None:
        import psycopg  # noqa: PLC0415 - PostgreSQL stores only

        try:
            psycopg.connect(host=self.env["POSTGRES_HOST"], port=self.env["POSTGRES_PORT"],
                            dbname=self.env["POSTGRES_DBNAME"], user=login, password=password,
                            connect_timeout=5).close()
        except psycopg.OperationalError:
            raise Unauthenticated("the database login or password is wrong") from None


def _basic(header: str) -> tuple[str, str]:
    kind, _, value = header.partition(" ")
    if kind.lower() != "basic" or not value.strip():
        raise Unauthenticated("log in with your database login and password (HTTP Basic)")
    try:
        login, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64 'login:password'") from None
    if not sep or not login or not password:
        raise Unauthenticated("log in with your database login and password (HTTP Basic)")
    return login, password


class Authenticate:
    """ASGI middleware: every request but :data:`OPEN_PATHS` must authenticate; the user goes in
    ``request.state.user``."""

    def __init__(self, app: ASGIApp, check: Any, pages: Callable[[str], bool] = lambda path: False):
        self.app = app
        self.check = check
        self.pages = pages  # the web workspace's paths: its sessions sign people in (pgf_events.web)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self.pages(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            user = await run_in_threadpool(self.check, request)
        except Unauthenticated as e:
            realm = f'{self.check.scheme} realm="pgf"'
            await JSONResponse({"error": f"authentication required: {e}"}, status_code=401,
                               headers={"WWW-Authenticate": realm})(scope, receive, send)
            return
        except AccessDenied as e:
            await JSONResponse({"error": " ".join(str(e).split())}, status_code=403)(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)
