"""Wake every open SSE stream when something new may have been recorded.

One thread per server waits on the feed's waker (LISTEN/NOTIFY on PostgreSQL, polling on SQLite)
and, whenever the log's head moves, bumps a generation counter on the event loop. Streams await
the counter instead of holding a thread each.
"""

from __future__ import annotations

import asyncio
import threading

from pgf_events.feed import ChangeFeed


class Pulse:
    def __init__(self, feed: ChangeFeed, loop: asyncio.AbstractEventLoop, *, interval: float | None = None):
        self.feed = feed
        self.loop = loop
        self.generation = 0
        self._changed = asyncio.Event()
        self._stop = threading.Event()
        self._waker = feed.waker(interval)
        self._thread = threading.Thread(target=self._watch, name="pgf-serve-pulse", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._waker.wake()
        self._thread.join(timeout=5)
        self._waker.close()

    def _watch(self) -> None:
        head = self.feed.app.recorder.max_notification_id() or 0
        while not self._stop.is_set():
            self._waker.clear()
            try:
                now = self.feed.app.recorder.max_notification_id() or 0
            except Exception:  # noqa: BLE001 - a failed look is retried at the next wake-up; streams poll too
                now = head
            if now != head:
                head = now
                self.loop.call_soon_threadsafe(self._bump)
            self._waker.wait(self._stop)

    def _bump(self) -> None:
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seen: int, timeout: float) -> bool:
        """True once the generation differs from ``seen``; False after ``timeout`` seconds."""
        if self.generation != seen:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return self.generation != seen
        return True
