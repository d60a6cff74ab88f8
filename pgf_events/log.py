"""Reading the notification log page by page (one helper for every reader that walks it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

PAGE = 1000


def notifications(recorder: Any, *, start: int = 1, stop: int | None = None, topics: Sequence[str] = (),
                  page: int = PAGE) -> Iterator[Any]:
    """Every notification with ``start <= id`` (``<= stop`` if given; of ``topics`` if given), in log order."""
    while stop is None or start <= stop:
        batch = recorder.select_notifications(start=start, limit=page, stop=stop, topics=list(topics))
        yield from batch
        if len(batch) < page:
            return
        start = batch[-1].id + 1
