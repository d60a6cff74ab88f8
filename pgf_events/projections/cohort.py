"""Cohort reports: pure functions over the patients' projection slices (or their PatientStates).

Each report's row and summary live in its section module (:mod:`.sections`); this module runs them.

Each report is one row per subject plus a cohort summary. The input is what the projection
tables hold (:func:`pgf_events.projections.slices.slice_state`), so a report read from the tables
and one computed from the log ``--as-of`` a time run exactly the same code. Populations: CONSORT
counts from everyone registered; dosing, endpoints, GVHD, infections and survival over enrolled
patients (endpoints and time-to-event analyses need their anchor/origin date, i.e. a first
infusion under the default protocol); safety over everyone with an adverse event on record.
Proportions carry a Wilson 95% CI; 1-year OS/DFS are Kaplan–Meier with Greenwood log-log CIs;
incidences are Aalen–Johansen with death competing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pgf_events.formatting import iso
from pgf_events.projections.derive import PatientState
from pgf_events.projections.sections import SECTIONS
from pgf_events.projections.sections.survival import survival_observations
from pgf_events.projections.slices import PROJECTIONS, slice_state
from pgf_events.projections.stats import Row, rate
from pgf_events.protocol import Protocol

# Re-exported for callers of the cohort reports.
__all__ = ["REPORTS", "build_report", "rate", "survival_observations"]
REPORTS = PROJECTIONS


def build_report(name: str, patients: Sequence[Row | PatientState], params: Protocol, *,
                 as_of: datetime | None = None, cutoff: date | None = None) -> dict[str, Any]:
    """Report ``name``: {report, as_of, cutoff, protocol_version, rows (one per subject), summary}.

    ``patients`` are projection slices (rows of that projection's table) or PatientStates.
    """
    section = SECTIONS[name]
    rows = [slice_state(name, p.as_json()) if isinstance(p, PatientState) else p for p in patients]
    rows = sorted(rows, key=lambda s: s["subject"])
    summary = section.summary(rows, params)
    doc: dict[str, Any] = {"report": name, "as_of": iso(as_of), "cutoff": iso(cutoff),
                           "protocol_version": params.version}
    if name == "survival":
        doc.update(origin=summary["origin"], os_1y=summary["os_1y"], dfs_1y=summary["dfs_1y"])
    doc.update(rows=[section.row(s) for s in rows], summary=summary)
    return doc


def scope_note(sites: frozenset[str] | None) -> dict[str, Any]:
    """What a report for a site-scoped user adds to its document: ``site_scope``, the sites it covers."""
    return {} if sites is None else {"site_scope": sorted(sites)}
