"""Recompute the chain from the stored events, streaming, and find the first break.

Events and links are read in batches (bounded memory) up to the largest position present when
the check starts, and merged by position; the running hash never trusts a stored link: it is
recomputed from GENESIS over the events themselves, and each stored link is only compared.

What each kind of tampering looks like:

- a changed byte in an event (payload, recorded time, type, stream or version): its recomputed
  hash differs from its link -> ``modified``;
- an event deleted (its link left behind): a link with no event -> ``deleted``;
- an event inserted without a link: an event with no link -> ``inserted``;
- two events swapped or one replaced: the event at a position is not the one its link names, or
  its hash differs -> ``reordered`` / ``modified``;
- an event deleted *with* its link: the next event's hash differs (its link was computed over the
  removed one) -> ``modified`` at the next event;
- the latest events deleted with their links: the head records a later position than the log
  reaches -> ``truncated``; a head that does not match the recomputed hash -> ``head``.

A forged event appended *with* a correct link and head is indistinguishable from a real append;
that is what ``pgf audit checkpoint`` (kept outside the database) and the attribution of every
event (who recorded it) are for.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any
from typing import Protocol as TypingProtocol
from uuid import UUID

import attrs

from pgf_events.audit import fastverify
from pgf_events.audit.chain import GENESIS, Checkpoint, material_identity
from pgf_events.audit.recorders import EventRow, Head, StoredLink
from pgf_events.domain.errors import StoreError
from pgf_events.gc_tuning import fewer_collections

BATCH = 10_000


class ChainReader(TypingProtocol):
    def chain_head(self) -> Head | None: ...
    def max_position(self) -> int: ...
    def event_rows(self, after: int, stop: int, limit: int) -> list[EventRow]: ...
    def link_rows(self, after: int, stop: int, limit: int) -> list[StoredLink]: ...
    def link_identity(self, position: int) -> tuple[UUID, int] | None: ...


@attrs.frozen
class Break:
    kind: str  # modified | deleted | inserted | reordered | truncated | head | checkpoint | chain | triggers | unchained
    position: int
    originator_id: UUID | None
    version: int | None
    detail: str


@attrs.frozen
class Verification:
    events: int
    last_position: int
    digest: bytes  # recomputed hash at last_position
    head: Head | None
    backfilled: int
    seconds: float
    broken: Break | None = None
    checkpoint: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def current_checkpoint(self) -> Checkpoint | None:
        return Checkpoint.of(self.last_position, self.digest) if self.events else None


def _stream(fetch: Callable[[int, int, int], list[Any]], stop: int, batch: int) -> Iterator[Any]:
    after = 0
    while True:
        rows = fetch(after, stop, batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


def chain_reader(app: Any) -> ChainReader:
    recorder = app.recorder
    if not all(hasattr(recorder, name) for name in ("chain_head", "event_rows", "link_rows")):
        raise StoreError(f"the store {app.store.display} keeps no tamper-evident chain (in-memory stores have none)")
    return recorder  # type: ignore[no-any-return]


def verify(reader: ChainReader, checkpoint: Checkpoint | None = None, batch: int = BATCH,
           progress: Callable[[int], None] | None = None) -> Verification:
    """The chain first (it names the first altered event); then that the append-only triggers stand."""
    result = _verify(reader, checkpoint, batch, progress)
    triggers = reader.missing_triggers() if result.ok and hasattr(reader, "missing_triggers") else 0
    if triggers:
        return attrs.evolve(result, broken=Break(
            "triggers", result.last_position, None, None,
            f"{triggers} of the store's append-only triggers are missing or disabled: they were dropped behind "
            "the engine's back, or the store was made by an older pgf (the chain itself still matches); "
            "an admin restores them with 'pgf db upgrade' (logged)"))
    return result


def _verify(reader: ChainReader, checkpoint: Checkpoint | None, batch: int,
            progress: Callable[[int], None] | None) -> Verification:
    started = time.perf_counter()
    head = reader.chain_head()  # read first: every event up to the head was committed before it
    stop = max(reader.max_position(), head[0] if head else 0)
    missing = _missing(reader, head, stop)
    if missing is not None:
        return Verification(events=0, last_position=0, digest=GENESIS, head=head, backfilled=0,
                            seconds=time.perf_counter() - started, broken=missing, checkpoint=checkpoint)
    if hasattr(reader, "check_segment"):  # SQLite: the fast path, when the log is intact (fastverify.py)
        with fewer_collections():
            fast = _fast(reader, head, checkpoint, stop, started)
        if fast is not None:
            if progress is not None:
                progress(fast.events)
            return fast
    events = _stream(reader.event_rows, stop, batch)
    links = _stream(reader.link_rows, stop, batch)
    digest, count, backfilled, last = GENESIS, 0, 0, 0
    head_seen = head is None or head.position == 0
    material = b""
    checkpoint_seen = checkpoint is None

    def done(broken: Break | None = None) -> Verification:
        return Verification(
            events=count, last_position=last, digest=digest, head=head, backfilled=backfilled,
            seconds=time.perf_counter() - started, broken=broken, checkpoint=checkpoint,
        )

    ev: EventRow | None = next(events, None)
    ln: StoredLink | None = next(links, None)
    sha256 = hashlib.sha256
    while ev is not None or ln is not None:
        if ln is None or (ev is not None and ev[0] < ln[0]):
            assert ev is not None
            return done(Break("inserted", ev[0], *material_identity(ev[1]),
                              "this event has no chain link: it was added behind the engine's back"))
        if ev is None or ln[0] < ev[0]:
            oid, version = reader.link_identity(ln[0]) or (None, None)
            return done(Break("deleted", ln[0], oid, version,
                              "this event is missing: the chain links it here but the event table no longer has it"))
        position, material = ev
        digest = sha256(digest + material).digest()
        if digest != ln[1]:
            oid, version = material_identity(material)
            linked = reader.link_identity(position)
            if linked is not None and linked != (oid, version):
                return done(Break("reordered", position, oid, version,
                                  f"this is not the event the chain linked here (stream {linked[0]} version {linked[1]}): "
                                  "events were moved or replaced"))
            return done(Break("modified", position, oid, version,
                              "this event does not match its chain link: its type, payload or recorded time was changed, "
                              "or an earlier event was removed or inserted together with its link"))
        if head is not None and position == head[0]:
            head_seen = True
            if digest != head[1]:
                return done(Break("head", position, *material_identity(material),
                                  "the chain head's hash does not match the log at this position"))
        if checkpoint is not None and position == checkpoint.position:
            checkpoint_seen = True
            if not checkpoint.matches(digest):
                return done(Break("checkpoint", position, *material_identity(material),
                                  f"the log here does not match the checkpoint {checkpoint}: it has been rewritten"))
        count += 1
        backfilled += ln[2]
        last = position
        if progress is not None and count % batch == 0:
            progress(batch)
        ev, ln = next(events, None), next(links, None)
    if head is None and count:
        return done(Break("head", last, None, None, "the chain head is missing (deleted behind the engine's back)"))
    if head is not None and head.position < last:
        return done(Break("head", last, *material_identity(material),
                          f"the chain head records position {head.position} but the log goes on to {last}: "
                          "the head was moved back behind the engine's back"))
    if head is not None and not head_seen:
        return done(Break("truncated", head[0], head.originator_id, head.originator_version,
                          f"the chain head records this event at position {head[0]} but the log ends at position {last}: "
                          "the latest events were removed"))
    if checkpoint is not None and not checkpoint_seen:
        return done(Break("checkpoint", checkpoint.position, None, None,
                          f"the log has no event at the checkpoint's position {checkpoint.position} "
                          f"(it ends at {last}): it does not extend the checkpoint {checkpoint}"))
    return done()


def _missing(reader: Any, head: Head | None, stop: int) -> Break | None:
    """What is missing outright: the triggers, the chain, the head, or any chain at all. Never repaired."""
    meta = reader.read_meta() if hasattr(reader, "read_meta") else {}
    if stop == 0:
        if head is None and "chain" in meta:
            return Break("head", 0, None, None, "the chain head is missing (deleted behind the engine's back)")
        return None
    linked = reader.link_rows(0, stop, 1)
    if linked:
        return None
    first = reader.event_rows(0, stop, 1)
    if not first:
        return None
    identity = material_identity(first[0][1])
    if head is None and "chain" not in meta:
        return Break("unchained", first[0][0], *identity,
                     "this store has no tamper-evident chain: it predates pgf's chain, or its chain, head and "
                     "marker were all removed; nothing can be verified. An admin may chain it with "
                     "'pgf db upgrade' (which is logged)")
    return Break("chain", first[0][0], *identity,
                 "the chain is missing or emptied: the store records that it is chained, yet no event has a link")


def _fast(reader: Any, head: Head | None, checkpoint: Checkpoint | None, stop: int,
          started: float) -> Verification | None:
    """The verification of an intact log in one joined pass; None if anything is off, so the precise
    algorithm (which names the first break) runs instead."""
    marks = frozenset(p for p in (head.position if head else 0, checkpoint.position if checkpoint else 0) if p)
    segments = fastverify.check_all(reader, stop, marks)
    if any(s is None for s in segments):
        return None
    parts = [s for s in segments if s is not None]
    count = sum(s.count for s in parts)  # each segment also counted its links: none without its event
    seen = {p: d for s in parts for p, d in s.marks.items()}
    if head is None and count:
        return None
    last = max((s.last for s in parts), default=0)
    if head is not None and (head.position < last or (head.position and seen.get(head.position) != head.hash)):
        return None
    if checkpoint is not None and (checkpoint.position not in seen or not checkpoint.matches(seen[checkpoint.position])):
        return None
    digest = next((s.digest for s in reversed(parts) if s.count), GENESIS)
    return Verification(events=count, last_position=last, digest=digest, head=head,
                        backfilled=sum(s.backfilled for s in parts), seconds=time.perf_counter() - started,
                        checkpoint=checkpoint)


def subject_of(app: Any, originator_id: UUID | None) -> str | None:
    """The subject code of a stream, read from its registration (None if that is unreadable too)."""
    if originator_id is None:
        return None
    try:
        stored = app.recorder.select_events(originator_id, lte=1)
        return str(app.mapper.to_domain_event(stored[0]).subject) if stored else None
    except Exception:  # noqa: BLE001 - a tampered registration must not hide the report
        return None


def describe_break(app: Any, broken: Break) -> dict[str, Any]:
    subject = subject_of(app, broken.originator_id)
    if broken.version is not None:
        ref = f"{subject}#{broken.version}" if subject else f"stream {broken.originator_id} version {broken.version}"
    else:
        ref = None
    where = f"{ref} (position {broken.position})" if ref else f"position {broken.position}"
    # Missing triggers are no break in the chain (it matches to its head): say what is wrong instead
    message = f"store unguarded: {broken.detail}" if broken.kind == "triggers" else f"chain broken at {where}: {broken.detail}"
    return {
        "kind": broken.kind, "position": broken.position, "subject": subject, "ref": ref,
        "message": message,
    }


def check_ciphertexts(app: Any) -> Break | None:
    """An encrypted store: every payload must decrypt in its place (AES-GCM bound to stream, version
    and topic, see :mod:`pgf_events.bound_cipher`); the first that does not is a break."""
    if not getattr(app.mapper, "cipher", None):
        return None
    # What decoding checks of the payload (it opens in its place, and holds JSON), its values and class
    # left unread (pgf_events.mapper.FastMapper.opens): verifying loads none of the domain.
    opens = getattr(app.mapper, "opens", app.mapper.to_domain_event)
    start = 1
    while True:
        batch = app.recorder.select_notifications(start=start, limit=1000)
        for n in batch:
            try:
                opens(n)
            except Exception:  # noqa: BLE001 - any failure to open a payload in its place
                oid = n.originator_id if isinstance(n.originator_id, UUID) else UUID(str(n.originator_id))
                return Break("ciphertext", n.id, oid, n.originator_version,
                             "this event's encrypted payload does not open in its place: it was altered or copied "
                             "from another event (the chain may have been rebuilt over it)")
        if len(batch) < 1000:
            return None
        start = batch[-1].id + 1
