"""What every export reads: each patient's events as the database knew them at a recorded time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pgf_events.domain.patient import Patient
from pgf_events.formatting import utc

__all__ = ["fold", "patient_streams", "utc"]


BATCH = 200  # streams read per query round trip on the chained recorders


def patient_streams(app: Any, as_of: datetime | None = None,
                    subjects: list[str] | None = None) -> Iterator[tuple[str, list[Any]]]:
    """(subject, events recorded up to ``as_of``) for every patient (or ``subjects``), in registration order.

    The chained recorders read the streams in batches of :data:`BATCH` (one transaction each) and
    decode the rows directly, as a projection replay does; any other recorder through ``app.stream``.
    ``app.subjects()`` already keeps to the acting user's sites, as ``app.stream`` checks.
    """
    subjects = app.subjects() if subjects is None else subjects
    recorder = app.recorder
    if not hasattr(recorder, "stream_rows"):
        for subject in subjects:
            events = [e for e in app.stream(subject) if as_of is None or e.timestamp <= as_of]
            if events:
                yield subject, events
        return
    decode = app.mapper.decode
    for start in range(0, len(subjects), BATCH):
        batch = subjects[start:start + BATCH]
        ids = [app.patient_id(subject) for subject in batch]
        for subject, oid, rows in zip(batch, ids, recorder.stream_rows([(i, 2**62) for i in ids]), strict=True):
            events = [e for e in (decode(oid, *row) for row in rows) if as_of is None or e.timestamp <= as_of]
            if events:
                yield subject, events


def fold(events: list[Any]) -> Patient:
    patient: Patient | None = None
    for event in events:
        patient = event.mutate(patient)
    assert patient is not None
    return patient
