"""Folded patients kept between the catch-ups of a long-running process (issue 18: live catch-up
proportional to what changed)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from pgf_events.domain.patient import Patient
from pgf_events.projections.derive import fold

FOLDED_EVENTS = 50_000  # events of folded patients a long-running process keeps (FoldCache)


class FoldCache:
    """Folded patients, (Patient, recorded times) by stream id, least recently used dropped first once
    they hold more than ``limit`` events (None: no limit, the cache of one catch-up's store).

    A long-running process (``pgf daemon``, ``pgf shell``) gives its application one
    (``app.projection_folds``), so every command's :class:`ProjectionStore` shares it: a new event
    of a patient folded by an earlier command is applied to that fold alone, instead of the
    patient's whole stream being read, decoded and folded again. Sound for the reason the
    per-store cache is: a fold is used only when it is exactly one version behind the event applied
    (stored events never change), and a fold whose event failed to apply is dropped.
    """

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self._folds: OrderedDict[UUID, tuple[Patient, dict[int, datetime]]] = OrderedDict()
        self._sizes: dict[UUID, int] = {}
        self._total = 0

    def get(self, pid: UUID) -> tuple[Patient, dict[int, datetime]] | None:
        found = self._folds.get(pid)
        if found is not None:
            self._folds.move_to_end(pid)
        return found

    def put(self, pid: UUID, fold: tuple[Patient, dict[int, datetime]]) -> None:
        self._folds[pid] = fold
        self._folds.move_to_end(pid)
        size = fold[0].version
        self._total += size - self._sizes.get(pid, 0)
        self._sizes[pid] = size
        while self.limit is not None and self._total > self.limit and len(self._folds) > 1:
            self.drop(next(iter(self._folds)))

    def drop(self, pid: UUID) -> None:
        if self._folds.pop(pid, None) is not None:
            self._total -= self._sizes.pop(pid)

    def clear(self) -> None:
        self._folds.clear()
        self._sizes.clear()
        self._total = 0

    def __len__(self) -> int:
        return len(self._folds)

    def advance(self, event: Any, prefix: Callable[[UUID, int], Iterable[Any]]) -> tuple[Patient, dict[int, datetime]]:
        """Fold one stored event onto its patient's kept fold and keep the result.

        The kept fold is used only when it is exactly one version behind ``event``; otherwise the
        stream's earlier events (``prefix(stream id, last version wanted)``) are folded first. A fold
        whose event failed to apply may be half changed: it is dropped, never used again.
        """
        pid, version = event.originator_id, event.originator_version
        cached = self.get(pid)
        if cached is None or cached[0].version != version - 1:
            cached = (None, {}) if version == 1 else fold(prefix(pid, version - 1))  # type: ignore[assignment]
        patient, recorded = cached  # type: ignore[misc]
        try:
            patient = event.mutate(patient)
        except BaseException:
            self.drop(pid)
            raise
        recorded[version] = event.timestamp
        self.put(pid, (patient, recorded))
        return patient, recorded
