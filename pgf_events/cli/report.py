"""``pgf report NAME``: one row per subject plus the cohort summary, for every projection."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import cell, emit_json, output_options, render
from pgf_events.cli.history import as_of_option, cutoff_option
from pgf_events.cli.projections import open_store
from pgf_events.domain.parsing import parse_as_of, parse_date
from pgf_events.projections.sections import SECTIONS
from pgf_events.projections.slices import PROJECTIONS

LISTINGS = {"deviations", "discontinued", "saes", "by_term_grade", "lab_worsening_by_term_grade"}


# Reports that are not a projection's rows: the deviation log (pgf_events.projections.deviations).
EXTRA_REPORTS = ("deviations", "sdv")  # sdv: source data verification (pgf_events.monitoring)


@click.command()
@click.argument("name", type=click.Choice(PROJECTIONS + EXTRA_REPORTS))
@as_of_option
@cutoff_option
@output_options(csv_ok=True)
@click.option("--plot", "plot_file", metavar="FILE.png", type=click.Path(dir_okay=False),
              help="survival only: draw Kaplan–Meier curves with numbers at risk to FILE.png.")
@click.pass_obj
def report(state: Any, name: str, as_of: str | None, cutoff: str | None, fmt: str | None,
           plot_file: str | None) -> None:
    """Print a cohort report: eligibility, dosing, endpoints, safety, survival, gvhd, infections, deviations or sdv.

    \b
    Example:
      pgf report endpoints
      pgf report survival --json
      pgf report survival --plot km.png
      pgf report dosing --as-of 2025-06-30 --csv
      pgf report endpoints --cutoff 2025-06-30    # DSMB data cut-off
      pgf report deviations --csv
      pgf report sdv --csv                        # source data verification per patient
    """
    from pgf_events.projections.queries import cohort_report  # noqa: PLC0415

    if plot_file and name != "survival":
        raise click.UsageError("--plot is available for the survival report only")
    known = parse_as_of(as_of) if as_of else None
    data_cutoff = parse_date(cutoff, "cutoff") if cutoff else None
    app = state.app(must_exist=True)
    if name == "deviations":
        _deviations(app, known, data_cutoff, fmt)
        return
    if name == "sdv":
        _sdv(app, fmt)
        return
    derived = known is not None or data_cutoff is not None
    store = None if derived else open_store(state)
    doc = cohort_report(app, name, as_of=known, cutoff=data_cutoff, store=store)
    if store is not None:  # read from the read-model tables: say when they were last verified
        from pgf_events.projections.verify import last_check, verified_note  # noqa: PLC0415

        doc["read_models_verified"] = last_check(store, [name])
        if fmt != "json":
            click.echo(verified_note(doc["read_models_verified"]), err=True)
    if plot_file:
        from pgf_events.projections.plots import plot_survival  # noqa: PLC0415

        plot_survival(plot_file, doc, app.protocol)
        click.echo(f"wrote {plot_file}", err=True)
    if fmt == "json":
        emit_json(doc)
        return
    if fmt == "csv":
        render(doc["rows"], "csv", list(doc["rows"][0]) if doc["rows"] else list(SECTIONS[name].columns))
        return
    print_human(name, doc)


def _sdv(app: Any, fmt: str | None) -> None:
    from pgf_events.monitoring import sdv_report  # noqa: PLC0415

    doc = sdv_report(app)
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
    if fmt == "csv":
        render(doc["rows"], "csv", DEVIATION_COLUMNS)
        return
    head = f"deviations report ({doc['protocol_version']}"
    head += f", as of {doc['as_of']}" if doc["as_of"] else ""
    click.echo(head + (f", data cut-off {doc['cutoff']})" if doc.get("cutoff") else ")"))
    if doc["rows"]:
        shown = ["subject", "kind", "date", "ref", "status", "reason", "acknowledged_by", "acknowledged_in"]
        render([{c: r[c] for c in shown} for r in doc["rows"]], None, shown)
    click.echo("")
    for key, value in _flatten(doc["summary"]):
        click.echo(f"{key}: {value}")


def print_human(name: str, doc: dict[str, Any]) -> None:
    """The human form of a report document: the rows table, then the summary and its listings."""
    rows = doc["rows"] if name == "eligibility" else [r for r in doc["rows"] if r.get("enrolled")]
    head = f"{name} report ({doc['protocol_version']}"
    head += f", as of {doc['as_of']}" if doc["as_of"] else ""
    head += f", data cut-off {doc['cutoff']})" if doc.get("cutoff") else ")"
    hidden = len(doc["rows"]) - len(rows)
    click.echo(head + (f"; {hidden} patient(s) not enrolled not shown" if hidden else ""))
    if rows:
        section = SECTIONS[name]
        headers = [section.headers.get(c, c.replace("_", " ")) for c in section.columns]
        render([{h: _short(r.get(c)) for c, h in zip(section.columns, headers, strict=True)} for r in rows], None,
               headers)
    click.echo("")
    listings = []
    for key, value in _flatten(doc["summary"]):
        if key.rsplit(".", 1)[-1] in LISTINGS:
            listings.append((key, value))
        else:
            click.echo(f"{key}: {value}")
    for key, value in listings:
        if value:
            click.echo(f"\n{key}:")
            render([{k: _short(v) for k, v in item.items() if k not in ("refs", "clocks")} for item in value], None)


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):  # reasons: "platelet_response=died" -> "plt: died"
        short = {"neutrophil_engraftment": "anc", "rbc_recovery": "rbc", "platelet_response": "plt"}
        return "; ".join(f"{short.get(k, k)}: {v}" for k, v in value.items()) or None
    return value


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _format(value: Any) -> str | None:
    """One line for a rate, a survival/incidence estimate or a distribution; None if not a leaf."""
    if not isinstance(value, dict):
        return cell(value) if not isinstance(value, float) else f"{value:.4g}"
    if {"k", "n", "estimate"} <= value.keys():
        text = f"{value['k']}/{value['n']} = {_pct(value['estimate'])}"
        if value["ci_low"] is not None:
            text += f" (95% CI {_pct(value['ci_low'])}–{_pct(value['ci_high'])})"
        extra = {k: v for k, v in value.items() if k not in ("k", "n", "estimate", "ci_low", "ci_high")}
        return text + "".join(f"; {k.replace('_', ' ')} {cell(v) or '-'}" for k, v in extra.items())
    if {"estimate", "at_risk", "horizon_days"} <= value.keys():
        text = f"{_pct(value['estimate'])} at day {value['horizon_days']}"
        if value["ci_low"] is not None:
            text += f" (95% CI {_pct(value['ci_low'])}–{_pct(value['ci_high'])})"
        text += f"; at risk {value['at_risk']}, events {value['events']}"
        if "competing_events" in value:
            text += f", competing deaths {value['competing_events']}"
        return text + f", n {value['n']}"
    if {"mean", "median", "min", "max"} <= value.keys():
        if not value["n"]:
            return "-"
        return (f"mean {value['mean']:.3g}, median {value['median']:.3g}, range {value['min']:.3g}–"
                f"{value['max']:.3g} (n {value['n']})")
    if all(not isinstance(v, (dict, list)) for v in value.values()):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items()) or "-"
    return None


def _flatten(summary: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out.append((name, value))
            continue
        if isinstance(value, list) and key in LISTINGS:
            out.append((name, value))
            continue
        line = _format(value)
        if line is None:
            out.extend(_flatten(value, f"{name}."))
        else:
            out.append((name, line))
    return out
