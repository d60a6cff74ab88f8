"""The audit page's trail search: the newest matching rows and how many match, from the trail's read
model (:mod:`.trail_index`), equal to filtering every stream's rows (tested).

The whole trail of a 5,000-patient store is about two million rows (one per changed field): making
them all, to show 200, took 15-20 s. The read model keeps, per stream, each event's recorded time,
user, kind and number of rows, so

- the *count* is summed from it (per stream whole totals by user and kind when every event of the
  stream is in range, else its events in range);
- the *newest rows* come from the streams holding the newest matching events only: the ``shown``
  newest matching events say the recorded time the ``shown``-th newest row has at the latest, and
  the streams with a matching event that new are made into rows by :func:`~.trail.trail_rows` and
  :func:`~.trail_monitoring.monitoring_trail_rows` (so every cell is theirs), filtered by the same
  test as the whole trail (:meth:`Search.matches`) and sorted as the page sorts every match (newest
  first by the recorded time's text, ties in the trail's order).

As of a time, a patient stream is read as :func:`~.source.patient_streams` reads it (its events
recorded by then) and a review stream as :func:`~pgf_events.projections.review.review_rows` (up to
its first event recorded later). A patient stream whose recorded times go back somewhere (never in
practice: events are stamped as they are stored) is made into rows whole when that time falls
inside it, since its rows by then are not a prefix of what the model counted.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_right
from collections.abc import Iterator
from datetime import datetime, time
from itertools import accumulate, pairwise
from typing import Any

import attrs

from pgf_events.audit.trail import trail_rows
from pgf_events.audit.trail_index import TRAIL, micros
from pgf_events.audit.trail_monitoring import lock_rows, monitoring_trail_rows
from pgf_events.domain.parsing import parse_date
from pgf_events.gc_tuning import fewer_collections
from pgf_events.projections.model_store import KeptRows, ModelKeeper
from pgf_events.projections.per_store import PerStore
from pgf_events.projections.store import ProjectionStore


def text_order(us: int) -> int:
    """A key ordering recorded times as their text (``utc``: ISO with a Z) orders: a time on the
    second is written without its ``.000000``, so it sorts after every other time in that second."""
    seconds, fraction = divmod(us, 1_000_000)
    return seconds * 1_000_001 + (fraction or 1_000_000)


def _lower(text: str) -> str:
    return text.lower()


def _upper(text: str) -> str:
    return text.upper()


@attrs.frozen
class Search:
    """An audit-trail search: user, patient, kind (or type) and a recorded-date range (inclusive, UTC)."""

    user: str = attrs.field(default="", converter=_lower)  # compared without case
    subject: str = attrs.field(default="", converter=_upper)
    kind: str = attrs.field(default="", converter=_lower)  # compared without case
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, filters: dict[str, str]) -> Search:
        return cls(filters.get("user", ""), filters.get("subject", ""), filters.get("kind", ""),
                   datetime.combine(parse_date(filters["from"], "from"), time.min) if filters.get("from") else None,
                   datetime.combine(parse_date(filters["to"], "to"), time.max) if filters.get("to") else None)

    def wants(self, event: Any, kind: str) -> bool:
        """Whether a patient event's rows can match (what :meth:`matches` tests of them, read from the
        event): the rows are then made only for the events that can."""
        if self.user and event.recorded_by.lower() != self.user:
            return False
        if self.kind and self.kind not in (kind.lower(), type(event).__name__.lower()):
            return False
        us = micros(event.timestamp)
        return not ((self.start and us < micros(self.start)) or (self.end and us > micros(self.end)))

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether an audit-trail row matches (what the whole trail's search tests each row with)."""
        stamp = datetime.fromisoformat(str(row["recorded_utc"]).replace("Z", ""))
        return not ((self.user and row["user"].lower() != self.user)
                    or (self.subject and row["subject"] != self.subject)
                    or (self.kind and self.kind not in (str(row["kind"]).lower(), str(row["type"]).lower()))
                    or (self.start and stamp < self.start) or (self.end and stamp > self.end))


class StreamTrail:
    """One stream's row of the trail model, in memory (see :mod:`.trail_index`)."""

    __slots__ = ("_ordered", "at", "kinds", "monotone", "rows", "subject", "totals", "users", "what", "who")

    def __init__(self, doc: dict[str, Any]):
        self.subject = doc["subject"]  # the row's key is a keyed hash of it in an encrypted store
        self.users = [u.lower() for u in doc["users"]]
        self.kinds = [(k.lower(), t.lower()) for k, t in doc["kinds"]]
        self.at = list(accumulate(doc["at"]))
        self.who, self.what, self.rows = doc["who"], doc["what"], doc["rows"]
        self.monotone = min(doc["at"][1:], default=0) >= 0  # no time earlier than the one before
        self.totals = {(u, k): n for u, k, n in doc["totals"]}
        self._ordered: bool | None = None

    @property
    def ordered(self) -> bool:
        """Whether its times' text never goes back either (:func:`text_order`): read newest first, a
        stream can then stop at its first event older than the newest matches found."""
        if self._ordered is None:
            self._ordered = self.monotone and all(text_order(a) <= text_order(b) for a, b in pairwise(self.at))
        return self._ordered

    def codes(self, search: Search) -> tuple[set[int] | None, set[int] | None]:
        users = None if not search.user else {i for i, u in enumerate(self.users) if u == search.user}
        kinds = None if not search.kind else {i for i, kt in enumerate(self.kinds) if search.kind in kt}
        return users, kinds

    def end(self, as_of: int | None, review: bool) -> int | None:
        """How many of its events count as of a time (from the first), or None: not a prefix (made whole)."""
        n = len(self.at)
        if as_of is None:
            return n
        if self.monotone:
            return bisect_right(self.at, as_of)
        if review:  # review_rows stops at the first event recorded later
            return next((i for i, us in enumerate(self.at) if us > as_of), n)
        if min(self.at) > as_of:
            return 0
        return n if max(self.at) <= as_of else None


class TrailModel:
    """The trail model's rows of one store, in memory (one per :class:`ProjectionStore`: :func:`trail_model_of`)."""

    def __init__(self, store: ProjectionStore):
        self.store = store
        self.keeper = ModelKeeper(store, TRAIL)
        self._kept = KeptRows(self.keeper)
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str], tuple[int, StreamTrail]] = {}  # by row key
        self._by_subject: tuple[dict[Any, Any], dict[tuple[str, str], StreamTrail]] | None = None
        self.streams_made = 0  # how many streams the last search made into rows (for the tests)

    def available(self) -> bool:
        return self.keeper.available()

    def refresh(self) -> dict[tuple[str, str], StreamTrail]:
        """The rows brought up to the log, by (subject, ``patient`` or ``review``)."""
        with self._lock, fewer_collections():
            self.keeper.catch_up()
            if self._kept.read():
                self._streams = {}
            streams = dict(self._streams)
            for key, (version, doc) in self._kept.rows.items():
                found = streams.get(key)
                if found is None or found[0] != version:
                    streams[key] = (version, StreamTrail(doc))
            self._streams = streams
            if self._by_subject is None or self._by_subject[0] is not streams:
                self._by_subject = (streams, {(trail.subject, kind): trail for (_, kind), (_, trail) in streams.items()})
            return self._by_subject[1]

    def search(self, app: Any, subjects: list[str], as_of: datetime | None, search: Search,
               shown: int) -> tuple[int, list[dict[str, Any]]]:
        """(how many rows match, the ``shown`` newest of them, newest first) of the trail of ``subjects``
        (the patients the viewer sees, in registration order) and, for an unscoped viewer
        (``app.site_scope`` None), the store lock's rows."""
        streams = self.refresh()
        as_us = micros(as_of) if as_of is not None else None
        lo_us = micros(search.start) if search.start is not None else None
        hi_us = micros(search.end) if search.end is not None else None
        if search.subject:
            subjects = [s for s in subjects if s == search.subject]
        count = 0
        whole: list[str] = []  # patient streams made into rows whole (not a prefix as of then)
        looks = []
        for part, name in enumerate(("patient", "review")):
            for subject in subjects:
                trail = streams.get((subject, name))
                if trail is None:
                    continue
                users, kinds = trail.codes(search)
                if users == set() or kinds == set():
                    continue
                end = trail.end(as_us, review=part == 1)
                if end is None:
                    whole.append(subject)
                    continue
                start, dated = 0, lo_us is not None or hi_us is not None
                if dated and trail.monotone:  # the date range as positions
                    start = 0 if lo_us is None else _bisect_left(trail.at, lo_us, end)
                    end = end if hi_us is None else min(end, bisect_right(trail.at, hi_us))
                    dated = False
                if start >= end:
                    continue
                count += _count(trail, start, end, users, kinds, lo_us if dated else None, hi_us if dated else None)
                looks.append((text_order(trail.at[end - 1]) if trail.ordered else 1 << 62, part, subject,
                              trail, start, end, users, kinds, dated))
        top: list[int] = []
        found_newest: list[tuple[int, int, int, str]] = []  # (time key, rows, part, subject)
        for _, part, subject, trail, start, end, users, kinds, dated in sorted(looks, key=lambda x: -x[0]):
            for i in range(end - 1, start - 1, -1):
                n = trail.rows[i]
                if not n or not _matches(trail, i, users, kinds, lo_us if dated else None, hi_us if dated else None):
                    continue
                key = text_order(trail.at[i])
                if len(top) >= shown and key < top[0]:
                    if trail.ordered:
                        break
                    continue
                (heapq.heappush if len(top) < shown else heapq.heappushpop)(top, key)
                found_newest.append((key, n, part, subject))
        found_newest.sort(key=lambda x: -x[0])
        least, seen = -1, 0
        for key, n, _, _ in found_newest:
            seen += n
            if seen >= shown:
                least = key
                break
        made = {part: {s for key, _, p, s in found_newest if p == part and key >= least} for part in (0, 1)}
        order = {s: i for i, s in enumerate(subjects)}
        patients = sorted(made[0] | set(whole), key=order.__getitem__)
        reviews = sorted(made[1], key=order.__getitem__)
        self.streams_made = len(patients) + len(reviews)
        wholly = set(whole)
        rows = []
        for row in trail_rows(app, as_of, patients, search.wants) if patients else ():
            if search.matches(row):
                rows.append(row)
                count += row["subject"] in wholly
        rows += [row for row in monitoring_trail_rows(app, as_of, reviews) if search.matches(row)] if reviews else []
        if app.site_scope is None:
            locked = [row for row in lock_rows(app, as_of) if search.matches(row)]
            rows += locked
            count += len(locked)
        return count, newest_first(rows)[:shown]


def newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's order: newest first by the recorded time's text, ties in the trail's order."""
    return sorted(rows, key=lambda r: str(r["recorded_utc"]), reverse=True)


def _bisect_left(at: list[int], us: int, end: int) -> int:
    lo, hi = 0, end
    while lo < hi:
        mid = (lo + hi) // 2
        if at[mid] < us:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _matches(trail: StreamTrail, i: int, users: set[int] | None, kinds: set[int] | None,
             lo_us: int | None, hi_us: int | None) -> bool:
    return ((users is None or trail.who[i] in users) and (kinds is None or trail.what[i] in kinds)
            and (lo_us is None or trail.at[i] >= lo_us) and (hi_us is None or trail.at[i] <= hi_us))


def _count(trail: StreamTrail, start: int, end: int, users: set[int] | None, kinds: set[int] | None,
           lo_us: int | None, hi_us: int | None) -> int:
    if start == 0 and end == len(trail.at) and lo_us is None and hi_us is None:
        return sum(n for (u, k), n in trail.totals.items()
                   if (users is None or u in users) and (kinds is None or k in kinds))
    return sum(trail.rows[i] for i in range(start, end) if _matches(trail, i, users, kinds, lo_us, hi_us))


def rows_of(app: Any, as_of: datetime | None, search: Search, subjects: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every matching row, in the trail's order (records, then monitoring, then the lock's): the whole
    trail filtered (the CSV export, and the search without read models)."""
    from itertools import chain  # noqa: PLC0415

    scoped = app.site_scope is not None
    for row in chain(trail_rows(app, as_of, subjects), monitoring_trail_rows(app, as_of, subjects)):
        if scoped and not row["subject"]:
            continue
        if search.matches(row):
            yield row


trail_model_of: PerStore[TrailModel] = PerStore(TrailModel)  # the one trail model of a store in this process
