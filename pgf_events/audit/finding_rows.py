"""The audit read model's rows: a pure function of one patient stream (:mod:`~pgf_events.projections.stream_models`).

One ``patient`` row per subject (:mod:`.findings` reads them), JSON-shaped:

- ``subject`` and ``site`` (the registration's);
- ``exceptions``: its exception rows (every kind but ``new_user_at_site``, which is cohort-wide), in
  the report's order (:func:`~.exceptions.sort_rows`), each as ``[kind, refs, user, recorded_at,
  reason, detail]``, as JSON text (read only when shown: a store where every entry was late holds
  hundreds of thousands, which as parsed objects cost every later cycle collection a scan), with
  ``counts`` (by kind) and ``head`` (the first row's ``[recorded_at, kind]``);
- ``first``: its first entry per (user, site), each ``[user, site, recorded_at, ref, reason]`` (what
  :func:`~.exceptions.new_user_rows` needs of it);
- ``deviations``: its deviation-log rows (:func:`~pgf_events.projections.deviations.patient_deviations`),
  each the values of :data:`DEVIATION_FIELDS`;
- ``recorded``: the ``earliest`` and ``latest`` recorded time of any of its events (time travel,
  :meth:`.findings.AuditModel.findings_as_of`: as of a time before ``earliest`` nothing of the stream
  was known, and as of ``latest`` or later all of it, so its rows are the answer).

The deviations do not depend on the day they are judged on: the only finding that does (a date in
the future) is an impossibility, which the log leaves out; so the rows are judged as of the stream's
last recorded time (tests/audit compare them with ``pgf report deviations`` on other days).
:func:`decode` gives back the rows the commands give, with their dates and times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson

from pgf_events.audit.exceptions import KINDS, PatientExceptions, sort_rows
from pgf_events.projections.deviations import patient_deviations
from pgf_events.projections.stream_models import Row, Stream, StreamModel, register
from pgf_events.projections.tables import json_text
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX

DEVIATION_FIELDS = ("kind", "date", "ref", "status", "detail", "reason", "acknowledged_by", "acknowledged_in",
                    "acknowledged_at")


class Entry(NamedTuple):
    """What a ``new_user_at_site`` row reads of the event that was a user's first entry at a site."""

    recorded_by: str
    timestamp: datetime
    reason: str | None


def rows(stream: Stream, params: Protocol) -> list[Row]:
    """A patient stream's ``patient`` row (see the module docstring)."""
    patient, events = stream.aggregate, stream.events
    subject = patient.subject
    found = PatientExceptions(subject, params, {})
    exceptions = sort_rows(list(found.rows(events, final=patient)))  # no refold after the last edit
    deviations = patient_deviations(subject, events, params, now=max(stream.recorded.values()), patient=patient)
    doc = {
        "subject": subject, "site": patient.registration.site,
        "exceptions": json_text([[r["kind"], r["refs"], r["user"], r["recorded_at"].isoformat(), r["reason"],
                                  r["detail"]] for r in exceptions]),
        "counts": dict(Counter(r["kind"] for r in exceptions)),
        "head": [exceptions[0]["recorded_at"].isoformat(), exceptions[0]["kind"]] if exceptions else None,
        "first": [[user, site, stamp.isoformat(), ref, getattr(event, "reason", None)]
                  for (user, site), (stamp, ref, event) in found.first_seen.items()],
        "deviations": [[_text(r[k]) for k in DEVIATION_FIELDS] for r in deviations],
        "recorded": {"earliest": min(stream.recorded.values()).isoformat(),
                     "latest": max(stream.recorded.values()).isoformat()},
    }
    return [("patient", subject, doc)]


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"at": value.isoformat()}
    if isinstance(value, date):
        return {"day": value.isoformat()}
    return value


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["at"]) if "at" in value else date.fromisoformat(value["day"])
    return value


class ExceptionRows:
    """A patient's stored exception rows, made into the report's rows (dicts) only when read: the page
    shows the first rows of every patient's merged (:func:`~.exceptions.first_rows`), which reads the
    few patients' rows it reaches, and its counts come stored."""

    __slots__ = ("_counts", "_head", "subject", "text")

    def __init__(self, subject: str, doc: dict[str, Any]):
        self.subject, self.text = subject, doc["exceptions"]
        self._counts, self._head = doc["counts"], doc["head"]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        subject, at = self.subject, datetime.fromisoformat
        for kind, refs, user, stamp, reason, detail in orjson.loads(self.text):
            yield {"kind": kind, "subject": subject, "refs": refs, "user": user, "recorded_at": at(stamp),
                   "reason": reason, "detail": detail}

    def __len__(self) -> int:
        return sum(self._counts.values())

    def kinds(self) -> Counter[str]:
        return Counter(self._counts)

    def head_key(self) -> tuple[Any, ...] | None:
        """The report's sort key of the first row (:func:`~.exceptions.sort_rows`), or None."""
        if self._head is None:
            return None
        return datetime.fromisoformat(self._head[0]), self.subject, KINDS.index(self._head[1])


Found = tuple[ExceptionRows, dict[tuple[str, str], tuple[datetime, str, Any]]]


def decode(doc: dict[str, Any]) -> tuple[Found, list[dict[str, Any]]]:
    """A row's exceptions (rows and first entries, as :func:`~.exceptions.patient_exceptions` gives
    them) and deviation rows (as :func:`~pgf_events.projections.deviations.patient_deviations`)."""
    subject, site = doc["subject"], doc["site"]
    first = {}
    for user, user_site, stamp, ref, reason in doc["first"]:
        when = datetime.fromisoformat(stamp)
        first[(user, user_site)] = (when, ref, Entry(user, when, reason))
    deviations = [{"subject": subject, "site": site, **{k: _value(v) for k, v in zip(DEVIATION_FIELDS, row, strict=True)}}
                  for row in doc["deviations"]]
    return (ExceptionRows(subject, doc), first), deviations


AUDIT = register(StreamModel(
    name="audit", prefixes=(PATIENT_TOPIC_PREFIX,), rows=rows,
    sources=("pgf_events.audit.exceptions", "pgf_events.audit.finding_rows", "pgf_events.projections.deviations",
             "pgf_events.domain.rules.entry", "pgf_events.domain.kinds", "pgf_events.projections.hemogram_inputs",
             "pgf_events.projections.tables"),
))
