"""Read models kept at a declared data cut-off: every patient's slices evaluated at that date.

At a data cut-off C every patient's derived state changes (the evaluation date is C, records dated
after C are hidden), so no read model kept "now" answers ``pgf report --cutoff C`` or a web page at
``?cutoff=C``: without one, each look derives every patient from the log (seconds at thousands of
patients). A trial's cut-offs are few and known ahead (the statistical analysis plan's interim and
final analyses, each DSMB meeting's data cut-off), so a data manager *declares* one
(``pgf projections cutoff DATE``) and the store keeps, per patient stream, its rows at C: a stream
model (:mod:`.stream_models`) named ``cutoff_YYYYMMDD``, one ``cutoff`` row per subject holding
every projection's slice at C (:func:`derive_patient` with ``cutoff=C``), or ``null`` for a patient
not yet in the cohort at C (registered after it). Like every stream model it is a pure function of
one stream, kept by the same exactly-once protocol and live catch-up, rebuilt by ``pgf projections
rebuild`` in its one pass and checked by ``pgf projections verify``; its digest covers the protocol
and the derivation code, so a change rebuilds it.

Declared cut-offs are the store's tracking rows of that name (:func:`declared`): nothing else
records them, and ``pgf projections cutoff DATE --drop`` forgets one (its table is emptied and its
tracking row removed). Time travel (:mod:`.travel`) reads these rows instead of deriving every
patient when the cut-off asked for is declared; an undeclared cut-off is derived as before.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections import OrderedDict
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pgf_events.projections.cohort import build_report, scope_note
from pgf_events.projections.derive import derive_patient
from pgf_events.projections.queries import registered_by
from pgf_events.projections.slices import all_slices
from pgf_events.projections.stream_models import Row, Stream, StreamModel
from pgf_events.projections.tables import tracking
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX

if TYPE_CHECKING:
    from pgf_events.projections.model_store import KeptRows, ModelKeeper
    from pgf_events.projections.store import ProjectionStore

PREFIX = "cutoff_"
KIND = "cutoff"
_NAME = re.compile(r"^cutoff_(\d{4})(\d{2})(\d{2})$")


def rows_at(cutoff: str, stream: Stream, params: Protocol) -> list[Row]:
    """One patient stream's ``cutoff`` row at ``cutoff`` (ISO date): ``{"slices": {projection: slice}}``
    as :func:`.travel.derive_cohort` makes them at that cut-off, ``{"slices": None}`` when the
    patient was not yet in the cohort then."""
    patient = stream.aggregate
    day = date.fromisoformat(cutoff)
    if not registered_by(patient, day):
        return [(KIND, patient.subject, {"slices": None})]
    state = derive_patient(patient, params, stream.recorded, cutoff=day).as_json()
    return [(KIND, patient.subject, {"slices": all_slices(state)})]


def name_of(cutoff: date) -> str:
    return f"{PREFIX}{cutoff:%Y%m%d}"


def date_of(name: str) -> date | None:
    """The cut-off a model name stands for (None: not a cut-off model's name)."""
    found = _NAME.match(name)
    if found is None:
        return None
    try:
        return date(*(int(part) for part in found.groups()))
    except ValueError:
        return None


@functools.cache
def model(cutoff: date) -> StreamModel:
    """The stream model of one cut-off (one object per date: its digest is cached per model)."""
    return StreamModel(name=name_of(cutoff), prefixes=(PATIENT_TOPIC_PREFIX,),
                       rows=functools.partial(rows_at, cutoff.isoformat()),
                       sources=("pgf_events.projections.cutoff_rows", "pgf_events.projections.queries"))


def declared(store: ProjectionStore) -> list[date]:
    """The cut-offs this store keeps rows for (its tracking rows named ``cutoff_YYYYMMDD``), in date order;
    none when the tracking table is not there yet or cannot be read."""
    try:
        with store._read() as conn:  # noqa: SLF001 - a read transaction of that store
            names = conn.execute(sa.select(tracking.c.name).where(tracking.c.name.like(f"{PREFIX}%"))).scalars()
            return sorted(day for name in names if (day := date_of(name)) is not None)
    except sa.exc.DBAPIError:
        return []


def declared_models(store: ProjectionStore) -> list[StreamModel]:
    return [model(day) for day in declared(store)]


def forget(store: ProjectionStore, cutoff: date) -> bool:
    """Stop keeping rows at ``cutoff``: its rows and tracking row go (False: it was not declared)."""
    from pgf_events.projections.tables import model_table  # noqa: PLC0415

    name = name_of(cutoff)
    with store._write() as conn:  # noqa: SLF001 - a write transaction of that store
        gone = conn.execute(sa.delete(tracking).where(tracking.c.name == name)).rowcount
        if gone:
            model_table(name).drop(conn, checkfirst=True)
    store.model_digests.pop(name, None)
    with _LOCK:
        _KEPT.pop((id(store), cutoff), None)
    return bool(gone)


class CutoffRows:
    """One declared cut-off's rows of one store, kept in memory (:class:`.model_store.KeptRows`):
    caught up on every read, so they answer for the log's head."""

    def __init__(self, store: ProjectionStore, cutoff: date):
        from pgf_events.projections.model_store import KeptRows, ModelKeeper  # noqa: PLC0415

        self.keeper: ModelKeeper = ModelKeeper(store, model(cutoff))
        self.kept: KeptRows = KeptRows(self.keeper)
        self._lock = threading.Lock()

    def current(self) -> dict[tuple[str, str], tuple[int, Any]] | None:
        """(subject, kind) -> (stream version, row data), caught up to the head; None when the rows
        cannot be kept here (a read-only copy, a login without the table)."""
        with self._lock:  # two pages at once: one catches up and reads, the other waits for it
            if not self.keeper.available():
                return None
            try:
                self.keeper.catch_up()
                self.kept.read()
            except sa.exc.DBAPIError:
                return None
            return self.kept.rows


KEPT = 2  # cut-offs whose rows a process keeps in memory (each about the size of the read models' rows)
_KEPT: OrderedDict[tuple[int, date], tuple[Any, CutoffRows]] = OrderedDict()
_LOCK = threading.Lock()


def rows_of(store: ProjectionStore, cutoff: date) -> dict[tuple[str, str], tuple[int, Any]] | None:
    """The rows at ``cutoff`` when it is declared for this store (None: not declared, or not usable),
    kept in memory for the last :data:`KEPT` cut-offs asked for in this process (at 5,000 patients
    one cut-off's rows hold about 165 MB; an older one is read from its table again when asked for)."""
    if cutoff not in declared(store):
        return None
    key = (id(store), cutoff)
    with _LOCK:
        found = _KEPT.get(key)
        if found is None or found[0]() is not store:
            found = _KEPT[key] = (weakref.ref(store), CutoffRows(store, cutoff))
        _KEPT.move_to_end(key)
        while len(_KEPT) > KEPT:
            _KEPT.popitem(last=False)
    return found[1].current()


def cohort_report_at(store: ProjectionStore, name: str, cutoff: date) -> dict[str, Any] | None:
    """``pgf report NAME --cutoff CUTOFF`` (no as-of, every site) from the rows kept at a declared
    cut-off, as :func:`.queries.cohort_report` derives it; None when the cut-off is not declared (or
    its rows cannot be used here)."""
    kept = rows_of(store, cutoff)
    if kept is None:
        return None
    rows = [data["slices"][name] for (_, kind), (_, data) in kept.items() if data["slices"] is not None]
    return {**build_report(name, rows, store.app.protocol, as_of=None, cutoff=cutoff), **scope_note(None)}
