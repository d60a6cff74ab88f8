"""The report sections, one module each (derive, row, summary, columns and the projection slice).

Adding a report: a module here defining ``SECTION`` (and the ``derive`` function that fills its
state keys), its line in :data:`SECTIONS`, and its fields in
:class:`~pgf_events.projections.derive.PatientState`. The projections (:mod:`..slices`), ``pgf
report`` (its choices, rows, columns), the read-model version and the change feed follow from here.
"""

from __future__ import annotations

from pgf_events.projections.sections import (
    dosing,
    eligibility,
    endpoints,
    gvhd,
    infections,
    safety,
    survival,
)
from pgf_events.projections.sections.base import Section

# In report order; the order is also each projection's index in change-feed positions (append only).
SECTIONS: dict[str, Section] = {
    s.name: s for s in (eligibility.SECTION, dosing.SECTION, endpoints.SECTION, safety.SECTION, gvhd.SECTION,
                        infections.SECTION, survival.SECTION)
}
