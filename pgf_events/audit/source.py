"""What every export reads: each patient's events as the database knew them at a recorded time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pgf_events.domain.patient import Patient
from pgf_events.formatting import utc

__all__ = ["fold", "patient_streams", "utc"]


def patient_streams(app: Any, as_of: datetime | None = None) -> Iterator[tuple[str, list[Any]]]:
    """(subject, events recorded up to ``as_of``) for every patient, in registration order."""
    for subject in app.subjects():
        events = [e for e in app.stream(subject) if as_of is None or e.timestamp <= as_of]
        if events:
            yield subject, events


def fold(events: list[Any]) -> Patient:
    patient: Patient | None = None
    for event in events:
        patient = event.mutate(patient)
    assert patient is not None
    return patient
