"""ChangeFeed: every projection change after a feed position, as a snapshot or live.

Reading always starts by catching the projections up (``ProjectionStore.catch_up()``, exactly
once even with several followers and writers at work), then selects the change rows after the
position, in feed order, a page at a time (bounded memory; no read transaction is held while the
consumer works). Only rows at or below every relevant projection's tracked position are handed
out: those are final, because a later catch-up only writes rows after its projection's position.
So a follower never emits a change and later finds an earlier one appearing behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Self

import sqlalchemy as sa

from pgf_events.application import TrialConduct
from pgf_events.domain.errors import ValidationError
from pgf_events.feed.change import Change, feed_position, split_position
from pgf_events.feed.wakers import Waker, make_waker
from pgf_events.projections.provision import finish_if_created
from pgf_events.projections.query_feed import FEED_PROJECTIONS, QueryFeed
from pgf_events.projections.store import ProjectionStore, changes
from pgf_events.store import parse_url

PAGE_SIZE = 500

_INDEX = sa.case({name: i for i, name in enumerate(FEED_PROJECTIONS)}, value=changes.c.projection, else_=-1)


def check_projection(projection: str | None) -> str | None:
    if projection is not None and projection not in FEED_PROJECTIONS:
        raise ValidationError(f"unknown projection {projection!r}; choose from {', '.join(FEED_PROJECTIONS)}")
    return projection


MAX_POSITION = 2**63 - 1  # positions are BIGINT in both backends


def check_position(after: Any) -> int:
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_POSITION:
        shown = after if not isinstance(after, int) or after.bit_length() < 80 else f"a {len(str(after))}-digit number"
        raise ValidationError(f"a feed position must be a whole number from 0 to {MAX_POSITION}, not {shown!r}")
    return after


class ChangeFeed:
    """The change feed of one store: ``changes()`` (caught-up snapshot) and ``follow()`` (live).

    ``source`` is an open :class:`TrialConduct` (left open on ``close()``) or a store URL (opened
    here with ``$PGF_CIPHER_KEY`` as usual, closed on ``close()``).
    """

    def __init__(self, source: TrialConduct | str | None = None, *, interval: float | None = None,
                 page_size: int = PAGE_SIZE, notify: Callable[[str], None] | None = None):
        self._owns_app = not isinstance(source, TrialConduct)
        self.app = source if isinstance(source, TrialConduct) else finish_if_created(TrialConduct(parse_url(source)))
        self.store = ProjectionStore(self.app, notify=notify)
        self.queries = QueryFeed(self.store)  # the data queries' projection (review streams)
        self.interval = interval
        self.page_size = page_size
        self.notify = notify
        # ProjectionStore keeps per-process caches: one catch-up at a time per feed (threads share it).
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ snapshot

    def catch_up(self) -> int:
        with self.lock:
            return self.store.catch_up() + self.queries.catch_up()

    def changes(self, after: int = 0, projection: str | None = None) -> Iterator[Change]:
        """Every change after ``after`` as of now, in feed order (positions strictly increasing)."""
        after, projection = check_position(after), check_projection(projection)
        self.catch_up()
        cap = self.settled(projection)
        while True:
            page = self._page(after, projection, cap, self.page_size)
            yield from page
            if len(page) < self.page_size:
                return
            after = page[-1].position

    def page(self, after: int = 0, projection: str | None = None, limit: int | None = None) -> list[Change]:
        """Catch up, then at most ``limit`` changes after ``after`` (for callers that poll)."""
        after, projection = check_position(after), check_projection(projection)
        self.catch_up()
        return self._page(after, projection, self.settled(projection), limit or self.page_size)

    def settled(self, projection: str | None = None) -> int:
        """The notification id up to which the change rows are final (the projections' lowest position)."""
        names = [projection] if projection else list(FEED_PROJECTIONS)
        self.queries.setup()
        rows = self.store.tracking()
        return min(rows[name]["position"] for name in names)

    def head(self) -> int:
        """The feed position of the last change written so far (0 if none)."""
        self.store.setup()
        with self.store._read() as conn:
            last = conn.execute(sa.select(changes.c.position, changes.c.projection)
                                .order_by(changes.c.position.desc(), _INDEX.desc()).limit(1)).first()
        return feed_position(last.position, last.projection) if last else 0

    def _page(self, after: int, projection: str | None, cap: int, limit: int) -> list[Change]:
        notification, index = split_position(after)
        c = changes.c
        query = (
            sa.select(c.position, c.projection, c.subject, c.kind, c.data, c.event_ref, c.recorded_at)
            .where(c.position >= notification, c.position <= cap,
                   sa.or_(c.position > notification, index < _INDEX))
            .order_by(c.position, _INDEX)
            .limit(limit)
        )
        if projection:
            query = query.where(c.projection == projection)
        self.store.setup()
        with self.store._read() as conn:
            rows = conn.execute(query).all()
        return [self._change(row) for row in rows]

    def _change(self, row: Any) -> Change:
        codec = self.store.codec
        data = codec.open(row.data)
        sealed = codec.cipher is not None
        return Change(
            position=feed_position(row.position, row.projection), projection=row.projection,
            subject=data.get("subject", row.subject) if sealed else row.subject, kind=row.kind, data=data,
            event_ref=codec.open({"sealed": row.event_ref}) if sealed else row.event_ref,
            recorded_at=row.recorded_at,
        )

    # ------------------------------------------------------------------ live

    def waker(self, interval: float | None = None) -> Waker:
        """What ``follow()`` waits on: LISTEN/NOTIFY on PostgreSQL, polling every ``interval`` s elsewhere."""
        return make_waker(self.app, interval=self.interval if interval is None else interval, notify=self.notify)

    def follow(self, after: int = 0, projection: str | None = None, *, stop: threading.Event | None = None,
               interval: float | None = None) -> Iterator[Change]:
        """Every change after ``after``, then each new one as it is recorded, until ``stop`` is set.

        Close the iterator (or let it be garbage-collected) to release the listening connection.
        """
        after, projection = check_position(after), check_projection(projection)
        stop = stop or threading.Event()
        with self.waker(interval) as waker:
            while not stop.is_set():
                waker.clear()
                for change in self.changes(after, projection):
                    yield change
                    after = change.position
                    if stop.is_set():
                        return
                waker.wait(stop)

    def close(self) -> None:
        self.store.close()
        if self._owns_app:
            self.app.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
