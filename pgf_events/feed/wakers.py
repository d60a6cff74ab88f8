"""When to look for new changes: PostgreSQL says so (LISTEN/NOTIFY), SQLite is polled.

A waker only says "something may have been recorded"; the feed then catches the projections up
and reads the changes after its position, so a missed or spurious wake-up costs latency, never a
change. ``clear()`` before reading and ``wait()`` after it: a notification that arrives while the
feed reads makes the next ``wait()`` return at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Self

from pgf_events.application import TrialConduct

DEFAULT_INTERVAL = 0.1  # seconds between polls (SQLite): a cheap max(rowid) query; p99 lag ≈ the interval
SAFETY_INTERVAL = 2.0  # PostgreSQL: look anyway this often, in case a notification was lost
FALLBACK_INTERVAL = 1.0  # PostgreSQL after the listening connection failed
STOP_CHECK = 0.25  # how quickly wait() notices the stop event


class Waker:
    """Polling: ``wait()`` returns after ``interval`` seconds, or at once when woken or stopped."""

    live = False

    def __init__(self, interval: float = DEFAULT_INTERVAL):
        self.interval = interval
        self._event = threading.Event()

    def clear(self) -> None:
        self._event.clear()

    def wake(self) -> None:
        """Make the current or next ``wait()`` return now (thread-safe)."""
        self._event.set()

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Block until woken (True), or the interval passed or ``stop`` was set (False)."""
        deadline = time.monotonic() + self.interval
        while stop is None or not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._event.wait(min(remaining, STOP_CHECK)):
                return True
        return False

    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ListenWaker(Waker):
    """Woken by the library's PostgreSQL subscription (LISTEN/NOTIFY on the events table's channel).

    The subscription starts after the log's current head; a thread iterates it and wakes the feed
    for every batch of new notifications.
    """

    live = True

    def __init__(self, app: TrialConduct, *, interval: float = SAFETY_INTERVAL,
                 notify: Callable[[str], None] | None = None):
        super().__init__(interval)
        self.notify = notify or (lambda message: None)
        self.error: BaseException | None = None
        self._subscription: Any = app.recorder.subscribe(gt=app.recorder.max_notification_id() or 0)
        self._subscription.__enter__()
        self._thread = threading.Thread(target=self._run, name="pgf-feed-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for _ in self._subscription:
                self._event.set()
        except Exception as e:  # noqa: BLE001 - the feed goes on by polling, and says so
            self.error = e
            self.interval = min(self.interval, FALLBACK_INTERVAL)
            self.notify(f"live notifications stopped ({type(e).__name__}: {e}); polling every {self.interval:g} s")
            self._event.set()

    def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.__exit__(None, None, None)  # stops and joins the library's threads
            self._thread.join(timeout=5)


def make_waker(app: TrialConduct, *, interval: float | None = None,
               notify: Callable[[str], None] | None = None) -> Waker:
    """A LISTEN/NOTIFY waker on PostgreSQL, a polling one elsewhere (``interval`` seconds)."""
    if app.store.backend == "postgresql":
        return ListenWaker(app, notify=notify)
    return Waker(DEFAULT_INTERVAL if interval is None else interval)
