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

T = TypeVar("T")
MAX_ATTEMPTS = 8


def pause(attempt: int) -> None:
    """Wait a little longer after each lost race (5-50 ms times the attempt number, jittered)."""
    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not cryptography


def retry(action: Callable[[], T], *, on: tuple[type[BaseException], ...], failure: Callable[[BaseException], str],
          attempts: int = MAX_ATTEMPTS, retried: Callable[[], None] | None = None) -> T:
    """Run ``action`` until it does not raise one of ``on``; after ``attempts`` losses raise
    :class:`ConcurrencyError` with ``failure(last exception)``. ``retried`` runs before each new attempt."""
    for attempt in range(attempts):
        try:
            return action()
        except on as e:
            if attempt == attempts - 1:
                raise ConcurrencyError(failure(e)) from None
            if retried is not None:
                retried()
            pause(attempt)
    raise ConcurrencyError(f"gave up after {attempts} attempts")  # attempts < 1
