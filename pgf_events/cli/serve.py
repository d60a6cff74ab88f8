"""``pgf serve``: HTTP over the store, on 127.0.0.1 by default: the read-only JSON API and
Server-Sent Events for services, and the web workspace for people (:mod:`pgf_events.web`)."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
from typing import Any

import click

EXTRA_HINT = "pip install 'pgf-events[serve]'"
TOKEN_ENV = "PGF_SERVE_TOKEN"  # a token chosen by the caller instead of a random one (automation)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port; the URL is printed on stderr).")
@click.option("--keepalive", type=click.FloatRange(min=0.1), default=15.0, show_default=True, metavar="SECONDS",
              help="Send an SSE comment on /changes after this long without a change.")
@click.option("--interval", type=click.FloatRange(min=0.01, max=60), default=0.2, show_default=True,
              metavar="SECONDS", help="SQLite: seconds between polls for new events.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also accept requests whose Host header is NAME (repeatable; DNS-rebinding defence).")
@click.option("--idle-timeout", "idle_minutes", type=click.FloatRange(min=0.01, max=24 * 60), default=30.0,
              show_default=True, metavar="MINUTES", help="Sign a web session out after this long without a request.")
@click.pass_obj
def serve(state: Any, host: str, port: int, keepalive: float, interval: float, allow_hosts: tuple[str, ...],
          idle_minutes: float) -> None:
    """Serve the web workspace, and patient status, reports and the change feed (SSE) as JSON, until Ctrl-C.

    Endpoints: /patients/{subject}, /reports/{name}, /changes?after=N (Server-Sent
    Events, honours Last-Event-ID), /health, /openapi.json. Every request is
    authenticated: on PostgreSQL with the user's database login and password (HTTP
    Basic, checked by logging in to the database; the login needs a read role); on
    SQLite only on localhost, for the OS account that started the server, with the
    one-time token printed at start (Authorization: Bearer TOKEN, or ?token=).
    Requests whose Host header is not this server's (or --allow-host) get 400.

    The web workspace (/, /worklist, /patients, /patient/S001, /audit) is at the same
    address: open the printed link (SQLite), or sign in with your database login and
    password (PostgreSQL). There, monitors and sites raise, answer and close queries and
    tick source data verification, as themselves; the JSON API stays read-only.

    \b
    Example:
      pgf serve
      pgf serve --port 9000
      curl -N -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8765/changes?after=0'
      curl -u li.na 'https://trial.example/reports/survival'     # PostgreSQL, behind TLS
    """
    try:
        import uvicorn  # noqa: PLC0415 - the optional 'serve' extra

        from pgf_events.serve.app import build_app  # noqa: PLC0415 - needs starlette (the 'serve' extra)
        from pgf_events.serve.auth import TokenAuth  # noqa: PLC0415 - needs starlette (the 'serve' extra)
    except ModuleNotFoundError as e:
        raise click.ClickException(f"pgf serve needs the optional 'serve' extra ({e.name} is missing): "
                                   f"{EXTRA_HINT}") from None
    from pgf_events.feed import ChangeFeed  # noqa: PLC0415 - loaded when the command runs, not when --help lists it

    state.refuse_protocol_override("the change feed")
    app = state.app(must_exist=True)
    auth, how = _authenticator(app, state, host)
    feed = ChangeFeed(app, interval=interval, notify=lambda message: click.echo(message, err=True))
    click.get_current_context().call_on_close(feed.close)
    sock = _listen(host, port)
    url = _url(host, sock.getsockname()[1])
    config = uvicorn.Config(None, log_level="warning", lifespan="on", access_log=False,  # type: ignore[arg-type]
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    hosts = sorted({host, "localhost", "127.0.0.1", "::1", *allow_hosts})
    config.app = build_app(feed, keepalive=keepalive, interval=interval, closing=lambda: server.should_exit,
                           server_url=url, auth=auth, allowed_hosts=hosts, idle_minutes=idle_minutes)
    if not _loopback(host):
        click.echo(f"warning: listening on {host} over plain HTTP: passwords cross the network in the clear; "
                   "put a TLS proxy in front", err=True)
    if isinstance(auth, TokenAuth):
        click.echo(f"pgf serve: {url}/?token={auth.token} (the web workspace and the API; as {auth.user!r}; "
                   "Ctrl-C stops)\n"
                   f"  clients send: Authorization: Bearer {auth.token}   (or ?token=... on the URL)", err=True)
    else:
        click.echo(f"pgf serve: {url} (the web workspace and the API; {how}; Ctrl-C stops)", err=True)
    with _quiet_signals():
        server.run(sockets=[sock])


def _authenticator(app: Any, state: Any, host: str) -> tuple[Any, str]:
    """Who may ask: database logins on PostgreSQL; on SQLite, the OS account that started the server."""
    from pgf_events.serve.auth import PostgresLoginAuth, TokenAuth  # noqa: PLC0415 - the 'serve' extra

    if app.store.backend == "postgresql":
        return (PostgresLoginAuth(app.store.env, lambda login: app.authorise(login, "read")),
                "clients log in with their database login and password (HTTP Basic)")
    if not _loopback(host):
        raise click.ClickException(
            f"on a SQLite store pgf serve listens on localhost only (not {host}): it answers the OS account that "
            "started it, which a remote client cannot prove to be; use PostgreSQL for network access")
    return TokenAuth(state.acting_user(), os.environ.get(TOKEN_ENV) or None), "token"


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)  # connections wait in the backlog until the server accepts them
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _quiet_signals:
    """uvicorn re-raises the signal that stopped it once it has shut down: let that be a no-op (exit 0)."""

    def __enter__(self) -> None:
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}

    def __exit__(self, *exc: object) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)
