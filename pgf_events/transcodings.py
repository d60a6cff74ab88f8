"""How value objects are persisted. Transcoding names are stored in every event: never change them."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from pgf_events.domain import values as vo
from pgf_events.domain.patient import restore


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class RecordAsDict(Transcoding):
    """One transcoding per record class, named ``pgf.<kind>``; decoding never re-runs validation."""

    def __init__(self, cls: type[vo.Record]):
        self.type = cls
        self.name = f"pgf.{cls.KIND}"

    def encode(self, obj: vo.Record) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in obj.as_input().items()}

    def decode(self, data: dict[str, Any]) -> vo.Record:
        return restore(self.type, data)


def register_all(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    for cls in vo.RECORD_TYPES.values():
        transcoder.register(RecordAsDict(cls))
