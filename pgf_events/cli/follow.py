"""``pgf follow``: the change feed as JSON Lines on stdout, a snapshot (``--once``) or live."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import click

from pgf_events.feed.wakers import DEFAULT_INTERVAL
from pgf_events.projections.query_feed import FEED_PROJECTIONS

INTERVAL_HELP = "SQLite: seconds between polls for new events (PostgreSQL is woken by LISTEN/NOTIFY)."


@click.command()
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True, metavar="POSITION",
              help="Print only changes after this feed position (the last position you processed).")
@click.option("--once", is_flag=True, help="Print every change so far, then exit.")
@click.option("--projection", type=click.Choice(FEED_PROJECTIONS),
              help="Only this projection's changes (queries: every data query opened, answered, closed, reopened).")
@click.option("--interval", type=click.FloatRange(min=0.01, max=60), default=DEFAULT_INTERVAL, show_default=True,
              metavar="SECONDS", help=INTERVAL_HELP)
@click.pass_obj
def follow(state: Any, after: int, once: bool, projection: str | None, interval: float) -> None:
    """Print projection changes as JSON Lines, each with an increasing position; stay live unless --once.

    Resume with --after the last position you processed: nothing is lost, nothing repeats.
    Stops cleanly (exit 0) on Ctrl-C or SIGTERM.

    \b
    Example:
      pgf follow --once
      pgf follow --projection safety --after 5334
      pgf follow --projection queries            # every data query opened, answered, closed, reopened
      pgf follow | jq -c 'select(.kind == "update")'
    """
    from pgf_events.feed import ChangeFeed  # noqa: PLC0415 - loaded when the command runs, not when --help lists it

    state.refuse_protocol_override("the change feed")
    feed = ChangeFeed(state.app(must_exist=True), interval=interval,
                      notify=lambda message: click.echo(message, err=True))
    click.get_current_context().call_on_close(feed.close)
    stop = threading.Event()
    try:
        with _stop_on_signals(stop):
            feed_changes = feed.changes(after, projection) if once else feed.follow(after, projection, stop=stop)
            with closing(feed_changes):  # type: ignore[type-var]  # a generator: it has close()
                for change in feed_changes:
                    click.echo(change.to_line())  # click.echo flushes: one line at a time reaches the reader
                    if stop.is_set():
                        break
    except KeyboardInterrupt:  # a second signal while busy: stop at once, still cleanly
        pass
    except BrokenPipeError:  # the reader went away (`pgf follow | head`): stop quietly, exit 0
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (finish the current line, then exit 0); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
