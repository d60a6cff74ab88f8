"""Monitoring commands: ``pgf query ...``, ``pgf queries``, ``pgf sdv``, ``pgf freeze``/``unfreeze``,
``pgf lock``/``unlock`` (the use cases are in :mod:`pgf_events.monitoring`)."""

from __future__ import annotations

import json
from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options, render
from pgf_events.cli.keys import key_option


@click.group()
def query() -> None:
    """Raise, answer, close and reopen data queries on recorded events.

    \b
    Example:
      pgf query open S001#5 --field anc --text "ANC 45 looks like a unit error"
      pgf query answer S001-Q1 --text "checked: lab report says 4.5"
      pgf query close S001-Q1
      pgf query reopen S001-Q1 --text "the correction is still missing"
    """


@query.command("open")
@click.argument("ref", metavar="SUBJECT#N")
@click.option("--field", metavar="NAME", help="The field of that event the query is about.")
@click.option("--text", required=True, help="The question for the site.")
@output_options()
@click.pass_obj
def open_(state: Any, ref: str, field: str | None, text: str, fmt: str | None) -> None:
    """Raise a query on an event; prints the query id (S001-Q1).

    \b
    Example:
      pgf query open S001#5 --field anc --text "ANC 45 looks like a unit error"
    """
    from pgf_events.monitoring import open_query  # noqa: PLC0415

    app = state.app(must_exist=True)
    qid = open_query(app, ref, text, user=state.user, field=field)
    emit_json({"qid": qid, "ref": ref, "status": "open"}) if fmt == "json" else click.echo(qid)


def _query_action(name: str, text_required: bool, help_text: str, example: str) -> click.Command:
    @click.command(name, help=f"{help_text}\n\n\b\nExample:\n  {example}")
    @click.argument("qid", metavar="QID")
    @click.option("--text", required=text_required, help="The message recorded with it.")
    @click.pass_obj
    def command(state: Any, qid: str, text: str | None) -> None:
        from pgf_events import monitoring  # noqa: PLC0415

        app = state.app(must_exist=True)
        if name == "close":
            monitoring.close_query(app, qid, text, user=state.user)
        else:  # answer and reopen require --text
            (monitoring.answer_query if name == "answer" else monitoring.reopen_query)(app, qid, text or "",
                                                                                         user=state.user)
        click.echo(f"{qid.strip().upper()} {'answered' if name == 'answer' else name + 'd'}")

    return command


query.add_command(_query_action("answer", True, "Answer a query (or correct the event with --answers QID).",
                                'pgf query answer S001-Q1 --text "checked: the lab report says 4.5"'))
query.add_command(_query_action("close", False, "Close a query (resolved).", "pgf query close S001-Q1"))
query.add_command(_query_action("reopen", True, "Reopen a closed query.",
                                'pgf query reopen S001-Q1 --text "the correction is still missing"'))


@click.command()
@click.option("--subject", metavar="S", help="Only this patient's queries.")
@click.option("--status", type=click.Choice(["open", "answered", "closed"]), help="Only queries in this status.")
@click.option("--site", metavar="S", help="Only patients of this site.")
@output_options(csv_ok=True)
@click.pass_obj
def queries(state: Any, subject: str | None, status: str | None, site: str | None, fmt: str | None) -> None:
    """List data queries with their status and age in days (open ones first, oldest first).

    \b
    Example:
      pgf queries --status open
      pgf queries --site XQ --csv
    """
    from pgf_events.commands import normalise_subject  # noqa: PLC0415
    from pgf_events.monitoring import all_reviews, query_rows  # noqa: PLC0415

    app = state.app(must_exist=True)
    subjects = [normalise_subject(subject)] if subject else app.subjects()
    if subject:
        app.patient(subjects[0])
    sites = {s: app.patient(s).registration.site for s in subjects}
    rows = [r for r in query_rows(app, all_reviews(app, subjects), sites)
            if (status is None or r["status"] == status) and (site is None or r["site"] == site)]
    order = {"open": 0, "answered": 1, "closed": 2}
    rows.sort(key=lambda r: (order[r["status"]], -r["age_days"], r["qid"]))
    if fmt != "json":
        for r in rows:
            r.pop("thread")
    render(rows, fmt, None if fmt else ("qid", "site", "ref", "field", "status", "age_days", "check", "last"))


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="SUBJECT#N...")
@click.pass_obj
def sdv(state: Any, refs: tuple[str, ...]) -> None:
    """Mark events verified against source documents (a later correction or void unverifies them).

    \b
    Example:
      pgf sdv S001#2 S001#3 S001#5
    """
    from pgf_events.monitoring import verify_source  # noqa: PLC0415

    app = state.app(must_exist=True)
    for ref in verify_source(app, refs, user=state.user):
        click.echo(f"{ref} verified")


def _freeze_command(unfreeze: bool) -> click.Command:
    name = "unfreeze" if unfreeze else "freeze"
    doc = ("Unfreeze a patient so records and changes are accepted again." if unfreeze else
           "Freeze a reviewed patient: further records, corrections and voids are refused until unfrozen.")

    @click.command(name, help=f"{doc}\n\n\b\nExample:\n  pgf {name} S001 --reason \"...\"")
    @click.argument("subject")
    @click.option("--reason", required=True, help="Why (mandatory).")
    @click.pass_obj
    def command(state: Any, subject: str, reason: str) -> None:
        from pgf_events.monitoring import freeze  # noqa: PLC0415

        app = state.app(must_exist=True)
        freeze(app, subject, reason, user=state.user, unfreeze=unfreeze)
        click.echo(f"{subject.strip().upper()} {name}d" if unfreeze else f"{subject.strip().upper()} frozen")

    return command


freeze = _freeze_command(False)
unfreeze = _freeze_command(True)


@click.command()
@click.option("--reason", required=True, help="Why the database is locked (e.g. final analysis).")
@key_option
@output_options()
@click.pass_obj
def lock(state: Any, reason: str, key_file: str, passphrase_file: str | None, fmt: str | None) -> None:
    """Lock the database for analysis: every write is refused until an admin unlocks it.

    The chain is verified and a checkpoint of its head signed with your key (as 'pgf audit
    checkpoint' does); the signed statement is kept in the lock event and printed: keep it, and
    'pgf audit verify --checkpoint FILE' later proves the locked data unchanged.

    \b
    Example:
      pgf lock --reason "final analysis, data cut-off 2026-06-30" --passphrase-file /run/secrets/pgf-pass
    """
    from pgf_events.audit import checkpoints  # noqa: PLC0415
    from pgf_events.audit.verify import chain_reader, describe_break  # noqa: PLC0415
    from pgf_events.audit.verify import verify as run  # noqa: PLC0415
    from pgf_events.cli.audit import ChainBroken  # noqa: PLC0415
    from pgf_events.cli.keys import load_signing_key  # noqa: PLC0415
    from pgf_events.monitoring import lock as lock_store  # noqa: PLC0415

    app = state.app(must_exist=True)
    private_key = load_signing_key(key_file, passphrase_file)

    def checkpoint() -> str:
        reader = chain_reader(app)
        result = run(reader)
        if result.broken:
            raise ChainBroken(f"not locked: {describe_break(app, result.broken)['message']}")
        signed = checkpoints.take(app, reader, result, user=state.acting_user(), private_key=private_key)
        return json.dumps(signed, sort_keys=True, separators=(",", ":"))

    line = lock_store(app, reason, user=state.user, checkpoint=checkpoint)
    emit_json({"locked": True, "checkpoint": json.loads(line)}) if fmt == "json" else click.echo(line)


@click.command()
@click.option("--reason", required=True, help="Why the database is unlocked (mandatory).")
@click.pass_obj
def unlock(state: Any, reason: str) -> None:
    """Unlock the database (admins only).

    \b
    Example:
      pgf unlock --reason "late SAE follow-up received after lock"
    """
    from pgf_events.monitoring import unlock as unlock_store  # noqa: PLC0415

    unlock_store(state.app(must_exist=True), reason, user=state.user)
    click.echo("unlocked")
