"""``pgf due``: the coordinator's worklist (see :mod:`pgf_events.projections.worklist`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from pgf_events.cli._output import cell, emit_json, render

WIDTH = 100  # the human table fits 100 columns: the detail column takes what the others leave


@click.command()
@click.option("--site", metavar="S", help="Only patients of this site.")
@click.option("--on", "on", metavar="DATE", help="The day to plan for (default: today, UTC).")
@click.option("--json", "fmt", flag_value="json", help="Print one JSON document.")
@click.pass_obj
def due(state: Any, site: str | None, on: str | None, fmt: str | None) -> None:
    """List what is due: dose windows, overdue doses, missing labs, SAE clocks, open queries, signatures.

    Sorted by urgency: overdue first, then due now, open queries, upcoming windows, unsigned casebooks.

    \b
    Example:
      pgf due
      pgf due --site XQ --on 2025-03-10 --json
    """
    from pgf_events.audit.signatures import signatures  # noqa: PLC0415
    from pgf_events.domain.parsing import parse_date  # noqa: PLC0415
    from pgf_events.monitoring import review_of  # noqa: PLC0415
    from pgf_events.projections.worklist import end_of, sort_items, worklist  # noqa: PLC0415

    app = state.app(must_exist=True)
    now: datetime = app.clock()
    day = parse_date(on, "on") if on else now.date()
    at = end_of(day) if on else now
    items = []
    for subject in app.subjects():
        events = app.stream(subject)
        patient = app.patient(subject)
        if site is not None and patient.registration.site != site:
            continue
        recorded_at = {e.originator_version: e.timestamp for e in events}
        signed = any(s["valid"] for s in signatures(events))
        items += worklist(patient, review_of(app, subject, create=False), app.protocol, day, at, recorded_at, signed)
    items = sort_items(items)
    if fmt == "json":
        emit_json({"on": day, "site": site, "items": items})
        return
    if not items:
        click.echo(f"nothing due on {day}" + (f" at site {site}" if site else ""))
        return
    rows = [{"subject": i["subject"], "site": i["site"], "what": i["what"], "status": i["status"],
             "due": _when(i["due"]), "detail": i["detail"]} for i in items]
    fixed = ["subject", "site", "what", "status", "due"]
    used = sum(max(len(c), *(len(r[c]) for r in rows)) + 2 for c in fixed)
    room = max(20, WIDTH - used)
    for r in rows:
        if len(r["detail"]) > room:
            r["detail"] = r["detail"][: room - 1] + "…"
    render(rows, None, [*fixed, "detail"])


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%MZ")
    return cell(value)
