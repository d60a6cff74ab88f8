"""One way to retry a write that lost a race: a bounded number of attempts with a growing, jittered pause.

Every save is optimistic (the stream's next version must be free); a writer that finds it taken
re-runs its whole unit on fresh state. Callers say which exceptions mean "lost the race" and what
to tell the user when every attempt lost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from pgf_events.domain.errors import ConcurrencyError
from pgf_events.store import is_locked

T = TypeVar("T")
MAX_ATTEMPTS = 12
MAX_PAUSE_SECONDS = 1.0


def pause(attempt: int) -> None:
    """Wait after the ``attempt``-th lost race: a random time up to 10 ms x 2^attempt, at most 1 s
    ("full jitter": two writers that collided rarely collide again; a busy machine gets time)."""
    time.sleep(random.uniform(0.005, min(MAX_PAUSE_SECONDS, 0.01 * 2 ** attempt)))  # noqa: S311 - jitter


def retry(action: Callable[[], T], *, on: tuple[type[BaseException], ...], failure: Callable[[BaseException], str],
          attempts: int = MAX_ATTEMPTS, retried: Callable[[], None] | None = None) -> T:
    """Run ``action`` until it does not raise one of ``on``; after ``attempts`` losses raise
    :class:`ConcurrencyError` with ``failure(last exception)``. ``retried`` runs before each new attempt."""
    for attempt in range(attempts):
        try:
            return action()
        except on as e:
            if is_locked(e):  # it already waited --wait seconds for another process's lock: the caller says so
                raise
            if attempt == attempts - 1:
                raise ConcurrencyError(failure(e)) from None
            if retried is not None:
                retried()
            pause(attempt)
    raise ConcurrencyError(f"gave up after {attempts} attempts")  # attempts < 1
