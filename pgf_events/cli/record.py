"""``pgf record <kind> SUBJECT [options]``: one command per record kind, all through one path.

Options map to record fields by name (``--weight-kg`` -> ``weight_kg``), exactly like the keys of
a ``pgf import`` line, and go through the same parsing and rules; so a mistake gets the same
message on the command line and in a batch. The commands and their options are generated from the
record-kind registry (:mod:`pgf_events.domain.kinds`) and the value classes' field metadata.
"""

from __future__ import annotations

from typing import Any

import attrs
import click

from pgf_events.cli._output import JSON_OPTION, emit_json
from pgf_events.cli._parsing import KeptParserCommand, KeptParserGroup
from pgf_events.domain.fields import InputOption
from pgf_events.domain.kinds import KINDS
from pgf_events.domain.parsing import label


def options(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The ``pgf record KIND`` options, from the value class's fields: (option, help, click kwargs).

    Required fields are required options; ``multiple`` fields repeat; ``flag`` fields take no value;
    input-only options (entry units) follow the field they qualify.
    """
    record = KINDS[kind].record
    after: dict[str, list[tuple[str, InputOption]]] = {}
    for name, option in record.INPUT_OPTIONS.items():
        after.setdefault(option.after or "", []).append((name, option))
    out: list[tuple[str, str, dict[str, Any]]] = []
    for a in attrs.fields(record):
        meta = a.metadata
        if meta.get("derived"):
            continue
        extra: dict[str, Any] = {}
        if a.default is attrs.NOTHING:
            extra["required"] = True
        if meta.get("flag"):
            extra.update(is_flag=True, default=None)
        if meta.get("multiple"):
            extra["multiple"] = True
        if meta.get("metavar"):
            extra["metavar"] = meta["metavar"]
        choices = getattr(meta.get("parse"), "choices", None)
        if choices:  # complete the values in the shell (pgf record transfusion S001 --product <TAB>)
            extra["shell_complete"] = lambda _ctx, _param, incomplete, c=choices: [x for x in c if x.startswith(incomplete)]
        out.append((label(a.name), meta.get("help", ""), extra))
        for name, option in after.pop(a.name, []):
            out.append((label(name), option.help, {"metavar": option.metavar} if option.metavar else {}))
    for name, option in [item for items in after.values() for item in items]:
        out.append((label(name), option.help, {"metavar": option.metavar} if option.metavar else {}))
    return out


@click.group(cls=KeptParserGroup)
def record() -> None:
    """Record a clinical event for a patient: prints its reference SUBJECT#N, what was stored and any status change.

    \b
    Example:
      pgf record lab S001 --date 2025-03-01 --anc 0.4 --plt 18
    """


def _make_command(kind: str) -> click.Command:
    spec = KINDS[kind]
    help_text, example = spec.summary, spec.example

    @click.pass_obj
    def callback(state: Any, subject: str, source: str | None, deviation: str | None, key: str | None,
                 fmt: str | None, quiet: bool, **fields: Any) -> None:
        fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()}
        fields = {k: v for k, v in fields.items() if v is not None and v != []}
        app = state.app()
        result = app.record(kind, subject, fields, user=state.user, source=source, deviation=deviation, key=key)
        if fmt == "json":
            emit_json(result.as_json())
        elif quiet:
            click.echo(result.ref)
        else:
            from pgf_events.cli._echo import echo_record  # noqa: PLC0415

            echo_record(app, result, kind, fields)

    command = KeptParserCommand(
        name=kind, callback=callback,
        help=f"{help_text}\n\n\b\nExample:\n  {example}",
        short_help=help_text,
        params=[click.Argument(["subject"])],
    )
    for name, help_, extra in options(kind):
        command.params.append(click.Option([name], help=help_, **extra))
    command.params.append(click.Option(["--source"], help="Source document reference (e.g. lab report id).",
                                       metavar="TEXT"))
    command.params.append(click.Option(
        ["--deviation"], metavar="WHY",
        help="Acknowledge the protocol deviation this record is (e.g. a dose outside its window or tolerance), "
             "with why; stored with the event and listed by 'pgf report deviations'."))
    command.params.append(click.Option(
        ["--key"], metavar="TEXT",
        help="Idempotency key: a retry with the same key (e.g. after a crash) prints the original reference "
             "and writes nothing."))
    command.params.append(click.Option(list(JSON_OPTION[0]), **JSON_OPTION[1]))
    command.params.append(click.Option(["--quiet", "-q"], is_flag=True,
                                       help="Print only the new event's reference (SUBJECT#N)."))
    return command


for _kind in KINDS:
    record.add_command(_make_command(_kind))
