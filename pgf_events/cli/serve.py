"""``pgf serve``: read-only HTTP (JSON + Server-Sent Events) over the store, on 127.0.0.1 by default."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from typing import Any

import click

EXTRA_HINT = "pip install 'pgf-events[serve]'"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port; the URL is printed on stderr).")
@click.option("--keepalive", type=click.FloatRange(min=0.1), default=15.0, show_default=True, metavar="SECONDS",
              help="Send an SSE comment on /changes after this long without a change.")
@click.option("--interval", type=click.FloatRange(min=0.01, max=60), default=0.2, show_default=True,
              metavar="SECONDS", help="SQLite: seconds between polls for new events.")
@click.pass_obj
def serve(state: Any, host: str, port: int, keepalive: float, interval: float) -> None:
    """Serve patient status, reports and the change feed (SSE) over HTTP, read-only, until Ctrl-C.

    Endpoints: /patients/{subject}, /reports/{name}, /changes?after=N (Server-Sent
    Events, honours Last-Event-ID), /health, /openapi.json. Clients are not
    authenticated: the server answers as --user, whose role is checked at start.

    \b
    Example:
      pgf serve
      pgf serve --port 9000
      curl -N 'http://127.0.0.1:8765/changes?after=0'
    """
    try:
        import uvicorn  # noqa: PLC0415 - the optional 'serve' extra

        from pgf_events.serve.app import build_app  # noqa: PLC0415 - needs starlette (the 'serve' extra)
    except ModuleNotFoundError as e:
        raise click.ClickException(f"pgf serve needs the optional 'serve' extra ({e.name} is missing): "
                                   f"{EXTRA_HINT}") from None
    from pgf_events.feed import ChangeFeed  # noqa: PLC0415 - loaded when the command runs, not when --help lists it

    feed = ChangeFeed(state.app(must_exist=True), interval=interval,
                      notify=lambda message: click.echo(message, err=True))
    click.get_current_context().call_on_close(feed.close)
    sock = _listen(host, port)
    url = _url(host, sock.getsockname()[1])
    config = uvicorn.Config(None, log_level="warning", lifespan="on", access_log=False,  # type: ignore[arg-type]
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    config.app = build_app(feed, keepalive=keepalive, interval=interval, closing=lambda: server.should_exit,
                           server_url=url)
    if not _loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach it can read the trial's data "
                   "(the server does not authenticate clients)", err=True)
    click.echo(f"pgf serve: {url} (read-only; as user {state.user!r}; Ctrl-C stops)", err=True)
    with _quiet_signals():
        server.run(sockets=[sock])


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
