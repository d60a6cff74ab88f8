"""``pgf correct`` and ``pgf void``: changes after first entry, each a new event with a reason."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options
from pgf_events.cli._parsing import KeptParserCommand
from pgf_events.domain.errors import ValidationError

DEVIATION_HELP = ("Acknowledge the protocol deviation this change makes (e.g. an infusion outside its window), "
                  "with why; it is stored with the event and listed by 'pgf report deviations'.")


def parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            raise ValidationError(f"--set must look like FIELD=VALUE (e.g. anc=0.6), not {pair!r}")
        changes[field.strip().replace("-", "_")] = value
    return changes


def _print(result: Any, fmt: str | None) -> None:
    if fmt == "json":
        emit_json(result.as_json())
    else:
        click.echo(result.ref)


@click.command(cls=KeptParserCommand)
@click.argument("ref", metavar="SUBJECT#N")
@click.option("--set", "sets", multiple=True, required=True, metavar="FIELD=VALUE",
              help="A field of that event and its corrected value. Repeatable.")
@click.option("--reason", required=True, help="Why the value is being corrected (mandatory).")
@click.option("--source", metavar="TEXT", help="Source document supporting the correction.")
@click.option("--deviation", metavar="WHY", help=DEVIATION_HELP)
@click.option("--answers", metavar="QID", help="The query (S001-Q1) this change answers.")
@output_options()
@click.pass_obj
def correct(state: Any, ref: str, sets: tuple[str, ...], reason: str, source: str | None, deviation: str | None,
            answers: str | None, fmt: str | None) -> None:
    """Correct fields of an earlier event; the original stays in the history.

    \b
    Example:
      pgf correct S001#5 --set anc=0.6 --reason "transcription error, see lab report"
      pgf correct S001#5 --set anc=4.5 --reason "unit error" --answers S001-Q1
    """
    result = state.app().correct(ref, parse_sets(sets), reason, user=state.user, source=source, deviation=deviation,
                                 answers=answers)
    _print(result, fmt)


@click.command(cls=KeptParserCommand)
@click.argument("ref", metavar="SUBJECT#N")
@click.option("--reason", required=True, help="Why the event is void (mandatory).")
@click.option("--source", metavar="TEXT", help="Source document supporting the void.")
@click.option("--deviation", metavar="WHY", help=DEVIATION_HELP)
@click.option("--answers", metavar="QID", help="The query (S001-Q1) this change answers.")
@output_options()
@click.pass_obj
def void(state: Any, ref: str, reason: str, source: str | None, deviation: str | None, answers: str | None,
         fmt: str | None) -> None:
    """Void an earlier event (it stays in the history, marked void). Voiding a void reinstates.

    \b
    Example:
      pgf void S001#7 --reason "entered on the wrong patient"
    """
    result = state.app().void(ref, reason, user=state.user, source=source, deviation=deviation, answers=answers)
    _print(result, fmt)
