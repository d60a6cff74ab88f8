"""``pgf report NAME``: one row per subject plus the cohort summary, for every projection."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._human import key_label
from pgf_events.cli._output import emit_json, output_options, render
from pgf_events.cli._summary import summary_lines
from pgf_events.cli.history import as_of_option, cutoff_option
from pgf_events.cli.projections import open_store
from pgf_events.domain.parsing import parse_as_of, parse_date
from pgf_events.projections.sections import SECTIONS
from pgf_events.projections.slices import PROJECTIONS

LISTINGS = {"deviations", "discontinued", "saes", "by_term_grade", "lab_worsening_by_term_grade"}


# Reports that are not a projection's rows: the deviation log (pgf_events.projections.deviations).
EXTRA_REPORTS = ("deviations", "sdv")  # sdv: source data verification (pgf_events.monitoring)
# A listing's human columns where it has more than a terminal holds (--csv --listing NAME has them all).
LISTING_COLUMNS = {"saes": ["subject", "ref", "term", "grade", "onset", "susar", "sponsor_due", "met"]}


@click.command()
@click.argument("name", type=click.Choice(PROJECTIONS + EXTRA_REPORTS))
@as_of_option
@cutoff_option
@output_options(csv_ok=True)
@click.option("--listing", metavar="NAME",
              help="Print one table of the report instead of the per-patient rows: 'summary' or a listing "
                   "(saes, by_term_grade, deviations, ...; see --json).")
@click.option("-o", "--output-dir", "output_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="With --csv, --tsv or --jsonl: write the rows, the summary and each listing to one file each in DIR.")
@click.option("--plot", "plot_file", metavar="FILE.png", type=click.Path(dir_okay=False),
              help="Draw the report's figure: survival (Kaplan–Meier with 95% CI and numbers at risk), "
                   "endpoints (cumulative incidence), dosing (swimmer plot), eligibility (CONSORT diagram).")
@click.option("--site", metavar="S", help="pgf report sdv only: the patients of site S.")
@click.pass_obj
def report(state: Any, name: str, as_of: str | None, cutoff: str | None, fmt: str | None, listing: str | None,
           output_dir: str | None, plot_file: str | None, site: str | None) -> None:
    """Print a cohort report: eligibility, dosing, endpoints, safety, survival, gvhd, infections, deviations or sdv.

    \b
    Example:
      pgf report endpoints
      pgf report survival --json
      pgf report survival --plot km.png
      pgf report dosing --as-of 2025-06-30 --csv
      pgf report safety --csv --listing saes     # SAEs with reporting due dates
      pgf report safety --csv -o safety/         # rows, summary and every listing, one file each
      pgf report endpoints --cutoff 2025-06-30    # DSMB data cut-off
      pgf report deviations --csv
      pgf report sdv --csv                        # source data verification per patient
      pgf report sdv --site PKU                   # one site's patients
    """
    from pgf_events.cli import _report_out as out  # noqa: PLC0415
    from pgf_events.projections.queries import cohort_report  # noqa: PLC0415

    if output_dir is not None and fmt not in ("csv", "tsv", "jsonl"):
        raise click.UsageError("-o/--output-dir needs --csv, --tsv or --jsonl")
    if output_dir is not None and listing:
        raise click.UsageError("use either --listing or -o/--output-dir")
    if site is not None and name != "sdv":
        raise click.UsageError("--site applies to 'pgf report sdv' only")
    plot = out.check_plot(name, plot_file) if plot_file else None
    known = parse_as_of(as_of) if as_of else None
    data_cutoff = parse_date(cutoff, "cutoff") if cutoff else None
    app = state.app(must_exist=True)
    if name == "deviations":
        _deviations(app, known, data_cutoff, fmt)
        return
    if name == "sdv":
        _sdv(app, fmt, site)
        return
    # --as-of, --cutoff or a protocol override: derived from the log in memory (the shared read models
    # are neither read nor rewritten)
    # A site-scoped user: their sites' patients, derived from the events they may read (the read models
    # hold every site's)
    # A cut-off declared with 'pgf projections cutoff' (and no --as-of) is read from its kept rows.
    derived = known is not None or state.in_memory() or app.site_scope is not None
    note = None  # when the read models were last verified: said after the report
    store = None if derived else open_store(state)
    checked, doc = [name], None
    if store is not None and data_cutoff is not None:
        from pgf_events.projections import cutoff_rows  # noqa: PLC0415

        doc = cutoff_rows.cohort_report_at(store, name, data_cutoff)  # None: not declared, derived below
        store, checked = (store if doc is not None else None), [cutoff_rows.name_of(data_cutoff)]
    if doc is None:
        doc = cohort_report(app, name, as_of=known, cutoff=data_cutoff, store=store)
    tables = out.tables(name, doc)
    if listing is not None and listing not in tables:
        raise click.UsageError(f"--listing: the {name} report has no listing {listing!r}; "
                               f"choose from {', '.join(t for t in tables if t != 'rows')}")
    if store is not None:  # read from the read-model tables: say when they were last verified
        from pgf_events.projections.verify import last_check, verified_note  # noqa: PLC0415

        doc["read_models_verified"] = last_check(store, checked)
        if fmt is None and not listing:
            note = verified_note(doc["read_models_verified"])
    if known is not None and not doc["rows"]:
        click.echo(out.empty_as_of_note(doc["as_of"]), err=True)
    if plot is not None:
        plot(plot_file, doc, app.protocol)
        click.echo(f"wrote {plot_file}", err=True)
    if output_dir is not None:
        for path in out.write_all(name, tables, fmt or "csv", output_dir):
            click.echo(f"wrote {path}", err=True)
        return
    if listing:
        render(tables[listing], fmt, headers=out.HEADERS)
        return
    if fmt == "json":
        emit_json(doc)
        return
    if fmt is not None:
        render(doc["rows"], fmt, list(doc["rows"][0]) if doc["rows"] else list(SECTIONS[name].columns))
        return
    print_human(name, doc)
    if note:
        click.echo(note, err=True)


def _sdv(app: Any, fmt: str | None, site: str | None = None) -> None:
    from pgf_events.monitoring import sdv_report  # noqa: PLC0415

    doc = sdv_report(app, site.upper() if site else None)
    if fmt == "json":
        emit_json(doc)
        return
    columns = ["subject", "site", "required", "verified", "not_yet", "invalidated", "extra_verified", "frozen"]
    render(doc["patients"], fmt, columns)
    if fmt is None:
        click.echo(f"\nplan: {', '.join(doc['plan'])}")
        render(doc["sites"], None, ["site", "patients", "required", "verified", "not_yet", "invalidated"])


def _deviations(app: Any, known: Any, data_cutoff: Any, fmt: str | None) -> None:
    from pgf_events.projections.deviations import COLUMNS as DEVIATION_COLUMNS  # noqa: PLC0415
    from pgf_events.projections.deviations import deviation_report  # noqa: PLC0415

    doc = deviation_report(app, known, data_cutoff)
    if fmt == "json":
        emit_json(doc)
        return
    if fmt is not None:
        render(doc["rows"], fmt, DEVIATION_COLUMNS)
        return
    head = f"deviations report ({doc['protocol_version']}"
    head += f", as of {doc['as_of']}" if doc["as_of"] else ""
    head += f", data cut-off {doc['cutoff']})" if doc.get("cutoff") else ")"
    click.echo(head + (f"; site {', '.join(doc['site_scope'])} only" if doc.get("site_scope") is not None else ""))
    if doc["rows"]:
        shown = ["subject", "kind", "date", "ref", "status", "reason", "acknowledged_by", "acknowledged_in"]
        render([{c: r[c] for c in shown} for r in doc["rows"]], None, shown)
    click.echo("")
    lines, _ = summary_lines(doc["summary"], LISTINGS)
    click.echo("\n".join(lines))


def print_human(name: str, doc: dict[str, Any]) -> None:
    """The human form of a report document: the rows table, then the summary and its listings."""
    rows = doc["rows"] if name == "eligibility" else [r for r in doc["rows"] if r.get("enrolled")]
    head = f"{name} report ({doc['protocol_version']}"
    head += f", as of {doc['as_of']}" if doc["as_of"] else ""
    head += f", data cut-off {doc['cutoff']})" if doc.get("cutoff") else ")"
    head += f"; site {', '.join(doc['site_scope'])} only" if doc.get("site_scope") is not None else ""
    hidden = len(doc["rows"]) - len(rows)
    click.echo(head + (f"; {hidden} patient(s) not enrolled not shown" if hidden else ""))
    if rows:
        section = SECTIONS[name]
        render(rows, None, list(section.columns), headers=dict(section.headers))
    click.echo("")
    lines, listings = summary_lines(doc["summary"], LISTINGS)
    click.echo("\n".join(lines))
    for key, value in listings:
        if value:
            click.echo(f"\n{key_label(key)}:")
            from pgf_events.cli._report_out import flat_item  # noqa: PLC0415

            leaf = key.rsplit(".", 1)[-1]
            render([{k: v for k, v in flat_item(item).items() if k != "refs" and not k.endswith("_reported")}
                    for item in value], None, LISTING_COLUMNS.get(leaf), choosable=False)
