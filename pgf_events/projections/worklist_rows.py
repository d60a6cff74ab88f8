"""The worklist read model's rows: a pure function of one stream (:mod:`.stream_models`).

Two kinds of row per subject (:mod:`.worklist_model` reads them):

- ``patient``, from the patient's stream: its :class:`~.worklist.WorklistInputs` (enrolment,
  infusions, death and withdrawal, which labs were complete, serious AEs with their recorded times,
  whether a valid signature covers the casebook): everything the items need but the day; and, under
  ``recorded``, when the stream's events were recorded (:func:`recorded_span`: time travel reads the
  rows of the patients whose stream was whole by then instead of folding them, :mod:`.travel`);
- ``queries``, from the patient's review stream: its open data queries (``qid``, ``ref``, ``text``,
  ``opened_at``).
"""

from __future__ import annotations

from typing import Any

from pgf_events.domain.patient import Patient
from pgf_events.projections import worklist
from pgf_events.projections.stream_models import Row, Stream, StreamModel, register
from pgf_events.projections.worklist import WorklistInputs
from pgf_events.protocol import Protocol
from pgf_events.topics import PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX


def signed(events: list[object]) -> bool:
    """Whether a valid signature covers the stream: ``any(s["valid"] for s in signatures(events))``.

    A signature stays valid until a later event that is not a signature; so some signature is valid
    exactly when the last event is one (tests/projections/test_single_pass.py checks the two agree)."""
    return bool(events) and isinstance(events[-1], Patient.Signed)


def recorded_span(events: list[Any]) -> dict[str, str]:
    """When the stream's events were recorded: the stream id, the first event's time and the latest time
    of any event (time travel, :mod:`.travel`: a stream is unknown as of a time before ``first``, and
    whole as of ``last`` or later). ``last`` is a maximum: a writer that waited for the lock may hold an
    earlier time than the event before it."""
    return {"stream": str(events[0].originator_id), "first": events[0].timestamp.isoformat(),
            "last": max(e.timestamp for e in events).isoformat()}


def rows(stream: Stream, params: Protocol) -> list[Row]:
    """A patient stream's ``patient`` row, or a review stream's ``queries`` row."""
    aggregate = stream.aggregate
    if stream.topic.startswith(PATIENT_TOPIC_PREFIX):
        doc = WorklistInputs.of(aggregate, stream.recorded, signed(stream.events)).as_json()
        doc["recorded"] = recorded_span(stream.events)
        return [("patient", aggregate.subject, doc)]
    queries = [{**q, "opened_at": q["opened_at"].isoformat()} for q in worklist.open_queries(aggregate)]
    return [("queries", aggregate.subject, {"subject": aggregate.subject, "queries": queries})]


WORKLIST = register(StreamModel(
    name="worklist", prefixes=(PATIENT_TOPIC_PREFIX, REVIEW_TOPIC_PREFIX), rows=rows,
    sources=("pgf_events.projections.worklist", "pgf_events.projections.worklist_rows"),
))
