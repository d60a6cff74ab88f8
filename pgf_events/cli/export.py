"""``pgf export audit-trail|odm|sdtm``: the record in the formats auditors' tools read."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pgf_events.domain.parsing import parse_as_of


def as_of_option(f: Any) -> Any:
    return click.option(
        "--as-of", metavar="TIME",
        help="Export what was recorded up to TIME: a date-time (UTC unless an offset is given) or a date (its end).",
    )(f)


def _cutoff(as_of: str | None) -> datetime | None:
    return parse_as_of(as_of) if as_of else None


def _check_folder(path: str) -> None:
    """A usage error (exit 2) for a file in a folder that does not exist; '-' is stdout."""
    if path != "-" and not Path(path).parent.is_dir():
        raise click.BadParameter(f"the folder {Path(path).parent} does not exist", param_hint="FILE")


@click.group()
def export() -> None:
    """Export the record: audit trail CSV, CDISC ODM 1.3.2 XML, SDTM and ADaM (Dataset-JSON, XPT, define.xml).

    \b
    Example:
      pgf export audit-trail trail.csv
      pgf export odm trial.xml --as-of 2025-06-30
      pgf export sdtm sdtm/
    """


@export.command("audit-trail")
@click.argument("file", metavar="FILE.csv")
@as_of_option
@click.pass_obj
def audit_trail(state: Any, file: str, as_of: str | None) -> None:
    """Write one CSV row per stored event: ref, type, clinical date, recorded UTC, user, source, reason,
    what it supersedes and old -> new values.

    \b
    Example:
      pgf export audit-trail trail.csv
      pgf export audit-trail - --as-of 2025-03-31 | less
    """
    from pgf_events.audit.files import atomic_text_file  # noqa: PLC0415
    from pgf_events.audit.trail import write_trail  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    _check_folder(file)
    app = state.app(must_exist=True)
    with atomic_text_file(file) as out:
        count = write_trail(app, out, cutoff)
    click.echo(f"{count} events written to {file}", err=True)


@export.command()
@click.argument("file", metavar="FILE.xml")
@as_of_option
@click.pass_obj
def odm(state: Any, file: str, as_of: str | None) -> None:
    """Write CDISC ODM 1.3.2 transactional XML: every event a transaction with its AuditRecord.

    \b
    Example:
      pgf export odm trial.xml
    """
    from pgf_events.audit.files import atomic_text_file  # noqa: PLC0415
    from pgf_events.audit.odm import write_odm  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    _check_folder(file)
    app = state.app(must_exist=True)
    with atomic_text_file(file) as out:
        count = write_odm(app, out, cutoff)
    click.echo(f"{count} transactions written to {file}", err=True)


@export.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@as_of_option
@click.pass_obj
def sdtm(state: Any, directory: str, as_of: str | None) -> None:
    """Write SDTM (SDTMIG 3.4) into DIR: each dataset as Dataset-JSON 1.1 (NAME.json) and SAS XPT v5
    (NAME.xpt), with define.xml 2.1; trial design datasets included (voided records left out,
    corrections applied). XPT needs the 'export' extra (pyreadstat, pandas).

    \b
    Example:
      pgf export sdtm sdtm/ --as-of 2025-12-31
    """
    from pgf_events.exports.sdtm import DATASETS, build_sdtm  # noqa: PLC0415
    from pgf_events.exports.package import write_package  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    app = state.app(must_exist=True)
    rows, _ = build_sdtm(app, cutoff)
    counts = write_package(Path(directory), DATASETS, rows, trial=app.protocol.trial, standard="SDTMIG", as_of=cutoff)
    click.echo(", ".join(f"{name} {n}" for name, n in counts.items()) + f" rows written to {directory}", err=True)
