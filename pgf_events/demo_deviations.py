"""The demo's protocol deviations, acknowledged as a site would (issue 13).

The demo's model deliberately doses some patients outside the window or the dose tolerance, and
enters some records wrongly before correcting them. The entry rules accept such a record only with
a ``--deviation`` acknowledgement; this module finds which commands need one by running a patient's
commands on a scratch aggregate in memory (the aggregate's own rules, never a guess) and sets it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from pgf_events.commands import Command, parse_ref
from pgf_events.domain import kinds
from pgf_events.domain.errors import RuleViolation
from pgf_events.domain.patient import Context, Patient
from pgf_events.protocol import DEFAULT_PROTOCOL, Protocol

DEVIATION_REASON = "synthetic cohort: given as the site scheduled it (demo protocol deviation)"


def acknowledge_deviations(commands: list[Command], protocol: Protocol = DEFAULT_PROTOCOL) -> list[Command]:
    """One patient's commands (registration first), each protocol deviation among them acknowledged."""
    ctx = Context(recorded_by="demo", now=datetime.now(UTC), protocol=protocol)
    first = commands[0]
    patient = Patient.register(first.subject, kinds.build_record("register", first.fields), ctx)  # type: ignore[arg-type]
    out = [first]
    for command in commands[1:]:
        def run(deviation: str | None, command: Command = command) -> None:
            if command.action == "record":
                spec = kinds.kind(command.kind)
                record = spec.record.from_input(command.fields)
                if spec.command:
                    getattr(patient, spec.command)(record, ctx, deviation)
                else:
                    patient.record(spec.event, record, ctx, deviation)
            elif command.action == "correct":
                patient.correct(parse_ref(command.ref)[1], dict(command.fields), command.reason or "", ctx, deviation)
            else:
                patient.void(parse_ref(command.ref)[1], command.reason or "", ctx, deviation)

        try:
            run(None)
        except RuleViolation as e:
            if "--deviation" not in str(e):
                raise
            run(DEVIATION_REASON)
            command = attrs.evolve(command, deviation=DEVIATION_REASON)
        out.append(command)
    return out
