"""Read models are verifiable: replay the log in memory and compare with the live read-model tables.

``pgf projections verify [NAME]`` first catches the read models up, then, in one read snapshot
(REPEATABLE READ on PostgreSQL, a WAL read transaction on SQLite), reads each projection's tracked
position and rows, and derives every patient again from the events up to that position with the
same pure functions a rebuild uses (:mod:`.replay`). Nothing is written to the read models: a
difference is reported, never repaired (``pgf projections rebuild`` is the explicit repair).

A row differs when its data (or the event references or protocol version stored beside it) is
not what the log gives; a row for a subject the log does not have, or a missing row, differs too.
The first difference is named by projection, subject and the first key that differs. The stream
models (:mod:`.stream_models`: the worklist's) are checked the same way, in the same pass: each row's
data, the stream version it reflects and that version's position.

Each run is recorded in ``pgf_read_model_checks`` (when, by whom, at which position, the result),
so ``pgf report`` and ``pgf serve`` can say when the read models were last verified.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from pgf_events.formatting import iso
from pgf_events.projections import replay
from pgf_events.projections.model_store import ModelKeeper
from pgf_events.projections.slices import PROJECTIONS, collect_refs
from pgf_events.projections.store import ProjectionStore
from pgf_events.projections.stream_models import StreamModel, registered
from pgf_events.projections.tables import _json_loads, json_text, model_table, tracking, views

checks_metadata = sa.MetaData()
checks = sa.Table(
    "pgf_read_model_checks", checks_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("checked_at", sa.String(40), nullable=False),  # ISO 8601 UTC, ...Z
    sa.Column("checked_by", sa.String(64), nullable=False),
    sa.Column("projections", sa.Text, nullable=False),  # comma-separated names
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


@attrs.frozen
class Difference:
    projection: str
    subject: str
    detail: str

    @property
    def message(self) -> str:
        return f"read model {self.projection} differs from the event log at subject {self.subject}: {self.detail}"


@attrs.frozen
class ReadModelCheck:
    projections: tuple[str, ...]
    position: int
    subjects: int
    rows: int
    difference: Difference | None
    checked_at: datetime
    models: tuple[str, ...] = ()  # the stream models checked

    @property
    def ok(self) -> bool:
        return self.difference is None

    def as_json(self) -> dict[str, Any]:
        diff = self.difference
        return {
            "ok": self.ok, "projections": list(self.projections), "models": list(self.models),
            "position": self.position,
            "subjects": self.subjects, "rows": self.rows, "checked_at": iso(self.checked_at),
            "first_difference": attrs.asdict(diff) | {"message": diff.message} if diff else None,
        }


def first_difference(live: Any, replayed: Any, path: str = "") -> str | None:
    """The first key path where two JSON documents differ, with both values; None if equal."""
    if live == replayed:
        return None
    if isinstance(live, dict) and isinstance(replayed, dict):
        for key in sorted(set(live) | set(replayed), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in live:
                return f"{where} is missing from the table"
            if key not in replayed:
                return f"{where} is in the table but not in the replay"
            found = first_difference(live[key], replayed[key], where)
            if found:
                return found
    if isinstance(live, list) and isinstance(replayed, list) and len(live) == len(replayed):
        for i, (a, b) in enumerate(zip(live, replayed, strict=True)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
    return f"{path or 'the row'} is {_short(live)} in the table but {_short(replayed)} replayed from the log"


def _short(value: Any) -> str:
    text = json_text(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _normal(value: Any) -> Any:
    """A derived value as it reads back from a JSON column (tuples become lists, dates strings)."""
    return _json_loads(json_text(value))


@contextmanager
def _snapshot(store: ProjectionStore) -> Iterator[Connection]:
    """One consistent read of the tracking rows and every view."""
    conn = store.engine.connect().execution_options(pgf_read=True)
    if store.engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    with conn, conn.begin():
        yield conn


def verify_read_models(store: ProjectionStore, names: Sequence[str] = PROJECTIONS, *,
                       models: Sequence[StreamModel] | None = None, checked_by: str = "") -> ReadModelCheck:
    """Catch up, then compare every row of ``names`` and of the stream ``models`` (None: every one
    registered that the store keeps) with a replay of the log; record the result."""
    names = tuple(n for n in PROJECTIONS if n in names)
    keepers = [ModelKeeper(store, m) for m in (registered() if models is None else models)]
    writable = store.app.store.read_only is None  # a read-only copy is checked as it is, and nothing is noted
    if writable:
        if names:
            store.catch_up(names)
        keepers = [k for k in keepers if k.available()]
        for keeper in keepers:
            keeper.catch_up()
    with _snapshot(store) as conn:
        positions = {r.name: r.position for r in conn.execute(sa.select(tracking.c.name, tracking.c.position))}
        kept = tuple(k.model for k in keepers if k.model.name in positions)  # a read-only copy may keep none
        positions = {n: p for n, p in positions.items() if n in names or any(m.name == n for m in kept)}
        result = _compare(store, conn, names, kept, positions)
    if writable:
        record(store, result, checked_by)
    return result


def _compare(store: ProjectionStore, conn: Connection, names: tuple[str, ...], models: tuple[StreamModel, ...],
             positions: dict[str, int]) -> ReadModelCheck:
    codec, app, params = store.codec, store.app, store.params
    live: dict[str, dict[Any, Any]] = {}
    for name in names:
        view = views[name]
        query = sa.select(view.c.subject, view.c.data, view.c.refs, view.c.protocol_version)
        live[name] = {r.subject: r for r in conn.execute(query)}
    for model in models:
        table = model_table(model.name)
        live[model.name] = {(r.subject, r.kind): r for r in conn.execute(sa.select(table))}
    rows = sum(len(v) for v in live.values())
    subjects: set[str] = set()
    by_position: dict[int, list[str]] = {}
    for name in positions:
        by_position.setdefault(positions[name], []).append(name)
    difference: Difference | None = None
    for position, group in sorted(by_position.items()):
        heads = replay.stream_heads(app, 0, position)
        mine = tuple(m for m in models if m.name in group)
        targets = replay.Targets(projections=any(n in views for n in group), models=mine)
        for _chunk, derived in replay.derived_chunks(app, params, heads, targets):
            for stream in derived:
                subjects.add(stream.subject)
                for name in (n for n in group if n in views and stream.slices is not None):
                    difference = difference or _row_difference(
                        name, stream.subject, live[name].pop(codec.key(stream.subject), None),
                        _normal(stream.slices[name]), params.version, codec)  # type: ignore[index]
                for model in mine:
                    for kind, subject, data in stream.rows.get(model.name, ()):
                        row = live[model.name].pop((codec.key(subject), kind), None)
                        difference = difference or _model_row_difference(
                            model.name, kind, subject, row, (_normal(data), stream.originator_version,
                                                             stream.position), codec)
    for name in names:  # rows left over: subjects the log does not have at that position
        for key in sorted(live[name]):
            difference = difference or Difference(
                name, key, "the table has a row for this subject, but the event log has no such patient")
    for model in models:
        for key, kind in sorted(live[model.name]):
            difference = difference or Difference(
                model.name, key, f"the table has a {kind} row for this subject, but the event log has no such stream")
    return ReadModelCheck(projections=names, position=max(positions.values(), default=0), subjects=len(subjects),
                          rows=rows, difference=difference, checked_at=datetime.now(UTC),
                          models=tuple(m.name for m in models))


def _model_row_difference(name: str, kind: str, subject: str, row: Any, replayed: tuple[Any, int, int],
                          codec: Any) -> Difference | None:
    if row is None:
        return Difference(name, subject, f"the table has no {kind} row for this subject, but the event log has")
    try:
        data = codec.open(row.data)
    except Exception:  # noqa: BLE001 - a sealed row that no longer opens was altered
        return Difference(name, subject, f"the {kind} row's sealed data does not open with the store's key: "
                                         "it was altered")
    found = first_difference(data, replayed[0])
    if found:
        return Difference(name, subject, f"{kind} row: {found}")
    if (row.version, row.position) != replayed[1:]:
        return Difference(name, subject, f"{kind} row: it says stream version {row.version} at position "
                                         f"{row.position}, the event log gives {replayed[1]} at {replayed[2]}")
    return None


def _row_difference(name: str, subject: str, row: Any, replayed: dict[str, Any], version: str,
                    codec: Any) -> Difference | None:
    if row is None:
        return Difference(name, subject, "the table has no row for this subject, but the event log has")
    try:
        data, refs = codec.open(row.data), codec.open(row.refs)
    except Exception:  # noqa: BLE001 - a sealed row that no longer opens was altered
        return Difference(name, subject, "the row's sealed data does not open with the store's key: it was altered")
    found = first_difference(data, replayed)
    if found:
        return Difference(name, subject, found)
    if refs != collect_refs(replayed):
        return Difference(name, subject, "the event references stored beside the row are not the ones its data names")
    if row.protocol_version != version:
        return Difference(name, subject, f"the row says protocol {row.protocol_version!r}, the store runs {version!r}")
    return None


def record(store: ProjectionStore, result: ReadModelCheck, checked_by: str) -> None:
    checks_metadata.create_all(store.engine)
    detail = result.difference.message if result.difference else "every row matches a replay of the event log"
    with store.engine.begin() as conn:
        conn.execute(sa.insert(checks).values(
            checked_at=iso(result.checked_at), checked_by=checked_by or "-",
            projections=",".join((*result.projections, *result.models)),
            position=result.position, ok=result.ok, detail=detail,
        ))


def last_check(store: ProjectionStore, names: Sequence[str] = PROJECTIONS) -> dict[str, Any] | None:
    """When the read models ``names`` were last verified, by whom, at which position, and the result.

    Each projection's latest check counts: a failed one wins; otherwise the oldest of them (the
    time since which every one of ``names`` is known good). None if one of them was never checked.
    """
    query = sa.select(checks).order_by(checks.c.id.desc()).limit(200)
    try:
        with store.engine.connect().execution_options(pgf_read=True) as conn, conn.begin():
            rows = conn.execute(query).all()
    except DBAPIError:  # no verification has ever run on this store (the table does not exist yet)
        return None
    latest: dict[str, Any] = {}
    for row in rows:
        for name in row.projections.split(","):
            latest.setdefault(name, row)
    if any(name not in latest for name in names):
        return None
    picked = [latest[name] for name in names]
    row = next((r for r in picked if not r.ok), min(picked, key=lambda r: r.id))
    return {"checked_at": row.checked_at, "checked_by": row.checked_by, "projections": row.projections.split(","),
            "position": row.position, "ok": bool(row.ok), "detail": row.detail}


def verified_note(check: dict[str, Any] | None) -> str:
    """One line for humans: when the read models were last verified, and the result."""
    if check is None:
        return "read models never verified (run: pgf projections verify)"
    result = "intact" if check["ok"] else "DIFFERED from the event log"
    return f"read models last verified {check['checked_at']} at position {check['position']}: {result}"
