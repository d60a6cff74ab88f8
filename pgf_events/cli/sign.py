"""``pgf sign SUBJECT --meaning review|approval``: an electronic signature over a patient's record."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import emit_json, output_options
from pgf_events.cli.keys import key_option, load_signing_key


@click.command()
@click.argument("subject")
@click.option("--meaning", type=click.Choice(["review", "approval"]), required=True,
              help="What the signature means: the record was reviewed, or it is approved.")
@click.option("--source", help="Source document reference (optional).")
@key_option
@output_options()
@click.pass_obj
def sign(state: Any, subject: str, meaning: str, source: str | None, key_file: str, passphrase_file: str | None,
         fmt: str | None) -> None:
    """Sign a patient's record as it stands now, with your key and its passphrase (two components).

    The signature (Ed25519, with your key registered and approved in this store) binds the
    signer, its meaning, the UTC time and the chain hash of the patient's events so far; any later
    record, correction or void on the patient invalidates it. The passphrase is asked for without
    echo (or read from --passphrase-file). Nothing is written if any check fails.

    \b
    Example:
      pgf sign S001 --meaning review
      pgf sign S001 --meaning approval --key /secure/dr.wang.pem --json
    """
    app = state.app(must_exist=True)
    app.patient(subject)  # an unknown subject is an error before the passphrase is asked for
    private_key = load_signing_key(key_file, passphrase_file)
    result = app.sign(subject, meaning, user=state.acting_user(), private_key=private_key, source=source)
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(result["ref"])
