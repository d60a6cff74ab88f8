"""What a bulk import keeps of a patient instead of the whole aggregate: the Patient's facts.

A record of a *history-free* kind (one whose entry rules read only the registration and the death,
:data:`pgf_events.domain.rules.entry.HISTORY_FREE_PRIOR`) is checked by the same functions the
aggregate uses (:func:`pgf_events.domain.integrity.check_new` over the same rules), against a
:class:`Prior` that holds just those records, and its event is the one ``Patient.record`` would
trigger: same class, same fields. So a file of lab results for a thousand patients is checked and
written holding a few hundred bytes per patient, not every record of every stream.

Anything else (a registration, an enrolment, an infusion, a death, a withdrawal, a correction or a
void, an idempotency key) needs the patient's history and goes through the aggregate itself.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pgf_events.domain import integrity
from pgf_events.domain import values as vo
from pgf_events.domain.patient import Context, Patient, make_ref
from pgf_events.domain.rules.editchecks import EditFacts, Finding
from pgf_events.domain.rules.entry import HISTORY_FREE_PRIOR, Prior, history_free
from pgf_events.protocol import Protocol

__all__ = ["PatientFacts", "history_free"]


class PatientFacts:
    """A patient as the entry rules and edit checks of history-free records see it."""

    def __init__(self, patient: Patient):
        self.subject: str = patient.subject
        self.id: UUID = patient.id
        self.version: int = patient.version
        self.registration: vo.Registration = patient.registration
        self._prior = Prior(i for i in integrity.items(patient) if i.kind in HISTORY_FREE_PRIOR)
        self.edit = EditFacts.of(patient)
        self.changed = False

    def ref(self, version: int) -> str:
        return make_ref(self.subject, version)

    def prior(self) -> Prior:
        return self._prior

    def record(self, event_class: type[Patient.Recorded], record: vo.Record, ctx: Context,
               deviation: str | None = None) -> Any:
        """``Patient.record`` for a history-free record: the same checks, the same event (returned, not applied)."""
        version, fields = self.recorded(event_class, record, ctx, deviation)
        return event_class(originator_id=self.id, originator_version=version, **fields)  # type: ignore[call-arg]

    def recorded(self, event_class: type[Patient.Recorded], record: vo.Record, ctx: Context,
                 deviation: str | None = None) -> tuple[int, dict[str, Any]]:
        """:meth:`record` without making the event: its version and the fields it is made with (for a
        writer that stores them as the event would be stored, :meth:`FastMapper.stored_fields`)."""
        if not history_free(record.KIND):
            raise ValueError(f"a {record.KIND} record needs the patient's history")
        acknowledged = integrity.check_new(self, record, ctx, deviation)  # type: ignore[arg-type] # duck-typed: ref, version, prior
        version = self.version + 1
        fields = {"timestamp": event_class.create_timestamp(), "record": record, "recorded_by": ctx.recorded_by,
                  "source": ctx.source, **integrity.ack_fields(deviation, acknowledged)}
        self.version = version
        self.edit.add(self.ref(version), record)
        self.changed = True
        return version, fields

    def edit_checks(self, params: Protocol) -> list[Finding]:
        return self.edit.findings(params)
