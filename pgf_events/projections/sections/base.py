"""What a report section is: the part of the derived state a projection keeps, and its report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from pgf_events.projections.stats import Row
from pgf_events.protocol import Protocol


@attrs.frozen
class Section:
    """One report: its projection's slice of the patient state, its row, summary and human columns.

    The section's derivation (``derive`` in its module, called by
    :func:`pgf_events.projections.derive.derive_patient`) fills the state keys the slice keeps.
    """

    name: str
    keys: tuple[str, ...]  # state keys the projection row keeps, besides the common header
    row: Callable[[Row], dict[str, Any]]  # one report row from one patient's slice
    summary: Callable[[Sequence[Row], Protocol], dict[str, Any]]  # the cohort summary of the rows
    columns: tuple[str, ...]  # the human table's columns (JSON and CSV carry the whole row)
    headers: Mapping[str, str] = attrs.field(factory=dict)  # short column headers
