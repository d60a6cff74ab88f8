"""The reading half of :class:`~.store.ProjectionStore`: a projection's rows, one subject's slices,
and each projection's position against the log."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pgf_events.log import notifications
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.tables import Codec, views


class StoreReading:
    """Mixed into :class:`~.store.ProjectionStore`, which provides what is declared here."""

    if TYPE_CHECKING:
        app: Any
        codec: Codec
        digest: str
        setup: Callable[[], None]
        _read: Callable[[], AbstractContextManager[Connection]]
        tracking: Callable[[], dict[str, dict[str, Any]]]
        head: Callable[[], int]

    def rows(self, name: str) -> list[dict[str, Any]]:
        self.setup()
        view = views[name]
        with self._read() as conn:
            rows = [self.codec.open(r.data) for r in conn.execute(sa.select(view.c.data).order_by(view.c.subject))]
        return rows if self.codec.cipher is None else sorted(rows, key=lambda r: r.get("subject", ""))

    def patient(self, subject: str) -> tuple[dict[str, dict[str, Any]], int] | None:
        """One subject's slices by projection name, and the stream version they reflect."""
        self.setup()
        slices, version = {}, 0
        with self._read() as conn:
            for name, view in views.items():
                query = sa.select(view.c.data, view.c.version).where(view.c.subject == self.codec.key(subject))
                row = conn.execute(query).first()
                if row is not None:
                    slices[name], version = self.codec.open(row.data), max(version, row.version)
        return (slices, version) if slices else None

    def status(self) -> list[dict[str, Any]]:
        """Each projection's position, the log head, and how many notifications it has still to apply."""
        state = self.tracking()
        head = self.head()
        out = []
        with self._read() as conn:
            counts = {name: conn.execute(sa.select(sa.func.count()).select_from(view)).scalar_one()
                      for name, view in views.items()}
        for name in PROJECTIONS:
            row = state[name]
            out.append({
                "name": name, "position": row["position"], "head": head, "behind": self._pending(row["position"]),
                "rows": counts[name], "protocol_version": row["protocol_version"],
                "current": row["digest"] == self.digest,
            })
        return out

    def _pending(self, position: int) -> int:
        return sum(1 for _ in notifications(self.app.recorder, start=position + 1))

