"""Read models kept per stream: rows that are a pure function of one stream's events.

A *stream model* (:class:`StreamModel`) names the streams it follows (by topic prefix: patient
streams, review streams, ...) and a pure function from one stream, read from its first event to
its last, to that stream's rows ``(kind, subject, data)``. Its table ``pgf_view_<name>``
(:func:`.tables.model_table`) holds one row per (subject, kind), each with the stream version it
reflects and the notification id (``position``) of that version; its tracking row ``<name>`` in
``pgf_projection_tracking`` moves like a projection's.

The projections and the stream models are kept by ONE pass over the log (:mod:`.replay`,
:meth:`.store.ProjectionStore.catch_up`): each stream is read, decoded and folded once, and its
projection slices and every model's rows come from that one fold (:class:`Stream`), written in
the same transactions. A model's own catch-up near the head (:mod:`.model_store`) folds the
streams a batch touched; far behind it takes the same pass. Either way a row is its stream's
prefix up to the last event applied, so a rebuild gives the rows the live catch-up wrote.

Adding one (a persisted audit model, a temporal model): a module-level row function, a
:class:`StreamModel` passed to :func:`register` when its module is imported, and that module named
in ``MODEL_MODULES`` of :mod:`pgf_events.cli.projections`, which ``pgf projections rebuild`` and
``verify`` import (it may live in a layer above this one, e.g. ``audit``). The model's digest
covers the protocol, the derivation code and the modules in ``sources``: a change to them rebuilds
its rows. Readers keep their own in-memory view (as :mod:`.worklist_model` does).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

import attrs

from pgf_events.projections.version import derivation_digest
from pgf_events.protocol import Protocol


class Stream(NamedTuple):
    """One stream as a row function sees it: read from version 1 to its last event in the pass."""

    originator_id: UUID
    position: int  # the notification id of its last event here
    topic: str  # the topic of its first event (which kind of aggregate)
    events: list[Any]  # decoded, versions 1..n
    aggregate: Any  # the events folded (a Patient, a Review, ...)
    recorded: dict[int, datetime]  # each version's recorded time


Row = tuple[str, str, Any]  # (kind, subject, data): data is JSON-shaped


@attrs.frozen
class StreamModel:
    """A read model of per-stream rows (see the module docstring). Picklable: a worker process of a
    replay computes rows too."""

    name: str  # its tracking row, and its table pgf_view_<name>
    prefixes: tuple[str, ...]  # topic prefixes of the streams it keeps rows for
    rows: Callable[[Stream, Protocol], list[Row]]  # a module-level, pure function
    sources: tuple[str, ...]  # modules (besides the derivation code) whose source decides the rows

    def wants(self, topic: str) -> bool:
        return topic.startswith(self.prefixes)

    def digest(self, params: Protocol) -> str:
        return _digest(self, params.digest)


@functools.cache
def _digest(model: StreamModel, protocol: str) -> str:
    code = hashlib.sha256(derivation_digest().encode())
    for name in sorted(model.sources):
        code.update(name.encode() + b"\0" + Path(importlib.import_module(name).__file__ or "").read_bytes())
    return hashlib.sha256(json.dumps([model.name, protocol, code.hexdigest()]).encode()).hexdigest()[:16]


_REGISTERED: dict[str, StreamModel] = {}


def register(model: StreamModel) -> StreamModel:
    """Add a model to those every full rebuild and verification keeps (once per name)."""
    _REGISTERED.setdefault(model.name, model)
    return _REGISTERED[model.name]


def registered() -> list[StreamModel]:
    """Every stream model registered in this process so far, in name order."""
    return [_REGISTERED[name] for name in sorted(_REGISTERED)]
