"""``pgf status SUBJECT``: one patient's derived state (eligibility, dosing, endpoints, safety...)."""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._human import cells_per_kg, grade, percent
from pgf_events.cli._output import cell, emit_json, output_options
from pgf_events.cli.history import as_of_option, cutoff_option
from pgf_events.domain.parsing import parse_as_of, parse_date

PLOT_HELP = "Also draw the ANC/Hb/PLT course with infusions, transfusions and endpoint dates to FILE.png."


@click.command()
@click.argument("subject")
@as_of_option
@cutoff_option
@output_options()
@click.option("--plot", "plot_file", metavar="FILE.png", type=click.Path(dir_okay=False), help=PLOT_HELP)
@click.pass_obj
def status(state: Any, subject: str, as_of: str | None, cutoff: str | None, fmt: str | None,
           plot_file: str | None) -> None:
    """Show a patient's derived state: eligibility, dosing, endpoints, GVHD, infections, survival.

    \b
    Example:
      pgf status S001
      pgf status S001 --as-of 2025-04-01 --json
      pgf status S001 --plot s001.png
      pgf status S001 --cutoff 2025-06-30
    """
    from pgf_events.projections.queries import patient_status  # noqa: PLC0415

    if plot_file:
        from pgf_events.projections.plot_files import check_path  # noqa: PLC0415

        check_path(plot_file)
    known = parse_as_of(as_of) if as_of else None
    data_cutoff = parse_date(cutoff, "cutoff") if cutoff else None
    app = state.app(must_exist=True)
    # Derived from the patient's own stream (the same functions as the read models): as fast however
    # far behind the read models are, and without loading SQLAlchemy.
    doc, patient = patient_status(app, subject, as_of=known, cutoff=data_cutoff)
    if plot_file:
        from pgf_events.projections.plots import plot_status  # noqa: PLC0415

        plot_status(plot_file, patient, doc, app.protocol)
        click.echo(f"wrote {plot_file}", err=True)
    if fmt == "json":
        emit_json(doc)
        return
    import textwrap  # noqa: PLC0415

    from pgf_events.cli._table import width  # noqa: PLC0415

    for key, value in human_lines(doc, window_days=app.protocol.dose_window_days):
        click.echo("\n".join(textwrap.wrap(f"{key:<12} {value}", width(), subsequent_indent=" " * 13,
                                            break_on_hyphens=False)))


def _when(found: dict[str, Any] | None, reason: str | None = None) -> str:
    """A dated endpoint with both day numbers (transplant = day 0; MSC D1 = first infusion, no D0)."""
    if not found:
        return f"not reached ({reason.replace('_', ' ')})" if reason else "not reached"
    msc = found.get("msc_day")
    msc_text = "" if msc is None else f", MSC D{msc}"
    return f"{found['date']} (day +{found['day_post_transplant']} post-transplant{msc_text})"


def next_window(dosing: dict[str, Any], window_days: int) -> str | None:
    """The next pending dose and its window: ``next: dose 3 due 2025-03-11 (MSC D15, window 03-09 to 03-13)``."""
    from datetime import date, timedelta  # noqa: PLC0415

    for dose in dosing.get("doses", []):
        if dose["status"] == "pending" and dose.get("target"):
            target = date.fromisoformat(dose["target"])
            low, high = target - timedelta(days=window_days), target + timedelta(days=window_days)
            return (f"next: dose {dose['number']} due {target} (MSC D{dose['msc_day']}, "
                    f"window {low:%m-%d} to {high:%m-%d})")
    return None


def human_lines(doc: dict[str, Any], window_days: int = 2) -> list[tuple[str, str]]:
    e, d, ep, g, s = doc["eligibility"], doc["dosing"], doc["endpoints"], doc["gvhd"], doc["safety"]
    as_of = f"as of {doc['as_of']}, " if doc["as_of"] else ""
    as_of += f"data cut-off {doc['cutoff']}, " if doc.get("cutoff") else ""
    reasons = ep.get("reasons", {})
    eligibility = e["status"]
    if e["unmet"]:
        eligibility += ": " + "; ".join(e["reasons"].get(c, c) for c in e["unmet"])
    elif e["unassessed"]:
        eligibility += f" (not yet assessed: {', '.join(e['unassessed'])})"
    dosing = (f"{d['given']}/{d['planned']} given (on time {d['on_time']}, early {d['early']}, late {d['late']}, "
              f"missed {d['missed']}, pending {d['pending']}, discontinued {d.get('discontinued', 0)}); "
              f"{cells_per_kg(d['cumulative_cells_per_kg'])}, RDI {percent(d['relative_dose_intensity'])}")
    upcoming = next_window(d, window_days)
    dosing += "; completed" if d["completed"] else (f"; stopped: {d['discontinuation_reason']}"
                                                    if d["discontinuation_reason"] else "")
    dosing += f"; {upcoming}" if upcoming and not d["completed"] and not d["discontinuation_reason"] else ""
    platelet = ep["platelet_response"] or "pending"
    if ep["platelet_response_date"]:
        platelet += " " + _when(ep["platelet"])
    elif "platelet_response" in reasons and reasons["platelet_response"] != platelet:
        platelet += f" ({reasons['platelet_response'].replace('_', ' ')})"
    clocks = [c for ae in s["adverse_events"] for c in (ae["clocks"] or [])]
    missed = sum(1 for c in clocks if c["met"] is False)
    return [
        ("subject", (f"{doc['subject']} (site {doc['site']}, transplant {doc['transplant_date']}; {as_of}"
                     f"data to {doc['evaluation_date']}; protocol {doc['protocol_version']}; #{doc['version']})")),
        ("eligibility", eligibility),
        ("enrolled", f"yes, {doc['enrolment_date']}" if doc["enrolled"] else "no"),
        ("dosing", dosing if doc["enrolled"] else "-"),
        ("neutrophils", _when(ep["neutrophil_engraftment"], reasons.get("neutrophil_engraftment"))),
        ("red cells", _when(ep["rbc_recovery"], reasons.get("rbc_recovery"))),
        ("platelets", platelet),
        ("gvhd", f"acute max grade {grade(g['acute_max_grade'])}, chronic {g['chronic_max_severity'] or '-'}"),
        ("infections", str(doc["infections"])),
        ("safety", f"{len(s['adverse_events'])} AE ({s['serious']} serious, max grade {cell(s['max_grade']) or '-'})"
                   + (f"; {missed} reporting clock(s) missed" if missed else "")),
        ("outcome", ("alive" if doc["alive"] else f"died {doc['death_date']}")
                    + (f", relapsed {doc['relapse_date']}" if doc["relapsed"] else "")
                    + (f", withdrawn {doc['withdrawal_date']}" if doc["withdrawn"] else "")),
        ("signatures", "; ".join(
            f"{sig['meaning']} by {sig['signer']} {str(sig['signed_at'])[:16].replace('T', ' ')} ({sig['ref']}): "
            + ("valid" if sig["valid"] else f"invalidated by {sig['invalidated_by']}")
            for sig in doc.get("signatures", [])
        ) or "-"),
    ]
