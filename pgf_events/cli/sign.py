"""``pgf sign SUBJECT --meaning review|approval``: an electronic signature over a patient's record."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options


@click.command()
@click.argument("subject")
@click.option("--meaning", type=click.Choice(["review", "approval"]), required=True,
              help="What the signature means: the record was reviewed, or it is approved.")
@output_options()
@click.pass_obj
def sign(state: Any, subject: str, meaning: str, fmt: str | None) -> None:
    """Sign a patient's record as it stands now, as yourself (your OS account, or your database login).

    The signature binds the signer, its meaning, the UTC time and the chain hash of the patient's
    events so far; any later record, correction or void on the patient invalidates it.

    \b
    Example:
      pgf sign S001 --meaning review
      pgf sign S001 --meaning approval --json
    """
    from pgf_events.audit.signatures import sign as record_signature  # noqa: PLC0415

    app = state.app(must_exist=True)
    result = record_signature(app, subject, meaning, user=state.user)
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(result["ref"])
