"""``pgf export audit-trail|odm|sdtm|adam|submission``: the record in the formats auditors' and sponsors' tools read."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pgf_events.cli._output import working
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


class Folder(click.Path):
    """A folder to write into; '-' (stdout) cannot hold several files."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "-":
            self.fail("writes several files, so it needs a folder, not '-' (stdout)", param, ctx)
        return super().convert(value, param, ctx)


@click.group()
@click.pass_context
def export(ctx: click.Context) -> None:
    """Export the record: audit trail CSV, CDISC ODM 1.3.2 XML, SDTM and ADaM (Dataset-JSON, XPT, define.xml).

    \b
    Example:
      pgf export audit-trail trail.csv
      pgf export odm trial.xml --as-of 2025-06-30
      pgf export sdtm sdtm/
      pgf export adam adam/
      pgf export submission submission/
    """
    if ctx.invoked_subcommand:  # a spinner on stderr (terminals only) while the export runs
        ctx.with_resource(working(f"Exporting {ctx.invoked_subcommand}"))


@export.command("audit-trail")
@click.argument("file", metavar="FILE.csv")
@as_of_option
@click.pass_obj
def audit_trail(state: Any, file: str, as_of: str | None) -> None:
    """Write one CSV row per changed field of every stored event: ref, record, field, old value, new
    value, clinical date, recorded UTC, user, role, site, reason, source (formula-like cells neutralised).

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
@click.option("--snapshot", is_flag=True,
              help="Current values only, one SubjectData per subject (for loading into an EDC).")
@click.pass_obj
def odm(state: Any, file: str, as_of: str | None, snapshot: bool) -> None:
    """Write CDISC ODM 1.3.2 XML: every event a transaction with its AuditRecord (Insert, Update,
    Remove as the standard defines them), or with --snapshot the current values.

    \b
    Example:
      pgf export odm trial.xml
      pgf export odm current.xml --snapshot --as-of 2025-06-30
    """
    from pgf_events.audit.files import atomic_text_file  # noqa: PLC0415
    from pgf_events.audit.odm import write_odm  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    _check_folder(file)
    app = state.app(must_exist=True)
    with atomic_text_file(file) as out:
        count = write_odm(app, out, cutoff, snapshot=snapshot)
    click.echo(f"{count} {'subjects' if snapshot else 'transactions'} written to {file}", err=True)


@export.command()
@click.argument("directory", metavar="DIR", type=Folder(file_okay=False))
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
    from pgf_events.exports.package import write_package  # noqa: PLC0415
    from pgf_events.exports.sdtm import DATASETS, build_sdtm  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    app = state.app(must_exist=True)
    rows, _ = build_sdtm(app, cutoff)
    counts = write_package(Path(directory), DATASETS, rows, trial=app.protocol.trial, standard="SDTMIG", as_of=cutoff)
    click.echo(", ".join(f"{name} {n}" for name, n in counts.items()) + f" rows written to {directory}", err=True)


@export.command("adam")
@click.argument("directory", metavar="DIR", type=Folder(file_okay=False))
@as_of_option
@click.pass_obj
def adam_(state: Any, directory: str, as_of: str | None) -> None:
    """Write ADaM (ADSL, ADTTE, ADRS, ADAE) derived by the engine into DIR as Dataset-JSON 1.1 and SAS
    XPT v5 with define.xml 2.1; every record names its SDTM source and pgf events.

    \b
    Example:
      pgf export adam adam/ --as-of 2025-12-31
    """
    from pgf_events.exports.adam import DATASETS, build_adam  # noqa: PLC0415
    from pgf_events.exports.package import write_package  # noqa: PLC0415
    from pgf_events.exports.sdtm import build_sdtm  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    app = state.app(must_exist=True)
    _, subjects = build_sdtm(app, cutoff)
    counts = write_package(Path(directory), DATASETS, build_adam(subjects), trial=app.protocol.trial,
                           standard="ADaMIG", as_of=cutoff)
    click.echo(", ".join(f"{name} {n}" for name, n in counts.items()) + f" rows written to {directory}", err=True)


@export.command()
@click.argument("directory", metavar="DIR", type=Folder(file_okay=False))
@as_of_option
@click.pass_obj
def submission(state: Any, directory: str, as_of: str | None) -> None:
    """Write a submission folder: tabulations/sdtm/ and analysis/adam/ (Dataset-JSON, XPT, define.xml)
    and reviewers-guide.md listing the sponsor choices and known conformance notes.

    \b
    Example:
      pgf export submission submission/ --as-of 2025-12-31
    """
    from pgf_events.exports.submission import write_submission  # noqa: PLC0415

    cutoff = _cutoff(as_of)
    app = state.app(must_exist=True)
    counts = write_submission(app, Path(directory), cutoff)
    click.echo(f"SDTM {sum(counts['SDTM'].values())} rows, ADaM {sum(counts['ADaM'].values())} rows written to "
               f"{directory}", err=True)
