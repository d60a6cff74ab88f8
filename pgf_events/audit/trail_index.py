"""The audit trail's read model: per stream, each event's recorded time, user, kind and number of
trail rows (:mod:`~pgf_events.projections.stream_models`, table ``pgf_view_trail``).

The audit page's trail search shows the newest matches and their exact count
(:mod:`.trail_search`). Which rows match (user, kind or type, recorded time) and how many rows an
event has are functions of the stream's events up to that event, so they are kept per stream; the
rows themselves (with the role held, the record's standing description) are made only for the few
streams holding the newest matches, by :func:`~.trail.trail_rows` and
:func:`~.trail_monitoring.monitoring_trail_rows` themselves.

One row per stream, JSON-shaped, columnar (an event a position in each list):

- a patient stream's ``patient`` row, a review stream's ``review`` row (its monitoring rows; its
  ``Started`` event has none), each with ``subject``;
- ``users`` and ``kinds`` (``[kind, type]``, e.g. ``["lab", "LabResulted"]``): the distinct values;
- ``at``: recorded times in microseconds since 1970 UTC, the first one whole, then differences;
- ``who`` and ``what``: indexes into ``users`` and ``kinds``; ``rows``: how many trail rows
  (:func:`~.trail.row_counts`; a review stream's events one each, ``Started`` none);
- ``totals``: ``[who, what, rows]``, the rows of the whole stream by user and kind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from pgf_events.audit.trail import row_counts
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.domain.review import Review
from pgf_events.projections.stream_models import Row, Stream, StreamModel, register
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONITORING = "monitoring"


def micros(when: datetime) -> int:
    """Microseconds since 1970 UTC (a time without a zone is taken as UTC)."""
    delta = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def rows(stream: Stream, params: Protocol) -> list[Row]:
    """A stream's ``patient`` or ``review`` row (see the module docstring)."""
    events = stream.events
    users: dict[str, int] = {}
    types: dict[type, int] = {}
    what = [types.setdefault(e.__class__, len(types)) for e in events]
    if stream.topic.startswith(PATIENT_TOPIC_PREFIX):
        name = "patient"
        who = [users.setdefault(e.recorded_by, len(users)) for e in events]
        kinds = [[EVENT_KINDS[t], t.__name__] for t in types]
        counts = row_counts(events)
    else:
        name = "review"
        who = [users.setdefault(getattr(e, "by", ""), len(users)) for e in events]
        kinds = [[MONITORING, t.__name__] for t in types]
        counts = [0 if isinstance(e, Review.Started) else 1 for e in events]  # Started: no row
    at = [micros(e.timestamp) for e in events]
    at[1:] = [b - a for a, b in pairwise(at)]
    totals: dict[tuple[int, int], int] = {}
    for user_kind, n in zip(zip(who, what, strict=True), counts, strict=True):
        totals[user_kind] = totals.get(user_kind, 0) + n
    subject = stream.aggregate.subject
    return [(name, subject, {"subject": subject, "users": list(users), "kinds": kinds, "at": at, "who": who,
                             "what": what, "rows": counts, "totals": [[u, k, n] for (u, k), n in totals.items()]})]


TRAIL = register(StreamModel(
    name="trail", prefixes=(PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX), rows=rows,
    sources=("pgf_events.audit.trail", "pgf_events.audit.trail_index", "pgf_events.domain.entries",
             "pgf_events.domain.kinds"),
))
