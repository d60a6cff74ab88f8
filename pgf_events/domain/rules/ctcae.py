"""CTCAE v5.0 laboratory grades and worsening from baseline (docs/rules.md, "Safety").

Grades use strict ``<`` boundaries, exactly as CTCAE v5.0 writes them ("<1.0 - 0.5" means
0.5 <= x < 1.0). The grade 2-4 cut-offs are fixed by CTCAE itself (not protocol parameters);
grade 1 starts below the lower limit of normal (LLN), which is a laboratory property and a
keyword argument here. Anaemia grade 4 (life-threatening) is a clinical, not a laboratory, grade,
so a haemoglobin value grades at most 3.

PGF patients start at grade 3-4, so lab adverse events are reported as worsening from the
baseline grade: the grade of the last measurement day on or before the baseline date (worst
value of that day), compared with every later measurement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import attrs

from pgf_events.domain.rules.inputs import LabPoint

# CTCAE v5.0 cut-offs, highest grade first: (grade, value strictly below which it applies).
NEUTROPHIL_CUTS = ((4, 0.5), (3, 1.0), (2, 1.5))  # 10^9/L
PLATELET_CUTS = ((4, 25.0), (3, 50.0), (2, 75.0))  # 10^9/L
ANAEMIA_CUTS = ((3, 80.0), (2, 100.0))  # g/L
DEFAULT_LLN = {"anc": 2.0, "plt": 150.0, "hb": 120.0}
TERMS = {"anc": "Neutrophil count decreased", "plt": "Platelet count decreased", "hb": "Anemia"}


def _grade(value: float, cuts: tuple[tuple[int, float], ...], lln: float) -> int:
    for grade, below in cuts:
        if value < below:
            return grade
    return 1 if value < lln else 0


def neutrophil_count_decreased_grade(anc: float, *, lln: float = DEFAULT_LLN["anc"]) -> int:
    """ANC (10^9/L): G1 <LLN-1.5, G2 <1.5-1.0, G3 <1.0-0.5, G4 <0.5; 0 when >= LLN."""
    return _grade(anc, NEUTROPHIL_CUTS, lln)


def platelet_count_decreased_grade(plt: float, *, lln: float = DEFAULT_LLN["plt"]) -> int:
    """PLT (10^9/L): G1 <LLN-75, G2 <75-50, G3 <50-25, G4 <25; 0 when >= LLN."""
    return _grade(plt, PLATELET_CUTS, lln)


def anaemia_grade(hb: float, *, lln: float = DEFAULT_LLN["hb"]) -> int:
    """Hb (g/L): G1 <LLN-100, G2 <100-80, G3 <80; 0 when >= LLN."""
    return _grade(hb, ANAEMIA_CUTS, lln)


_GRADERS = {"anc": neutrophil_count_decreased_grade, "plt": platelet_count_decreased_grade, "hb": anaemia_grade}


def lab_grade(analyte: str, value: float, *, lln: float | None = None) -> int:
    """Grade ``value`` of ``analyte`` ('anc', 'plt' or 'hb'); ValueError for another analyte."""
    if analyte not in _GRADERS:
        raise ValueError(f"unknown analyte {analyte!r}; expected one of {', '.join(_GRADERS)}")
    return _GRADERS[analyte](value, lln=DEFAULT_LLN[analyte] if lln is None else lln)


def is_worsening(baseline_grade: int | None, grade: int) -> bool:
    """True when ``grade`` is above the baseline grade; no baseline counts as grade 0."""
    return grade > (baseline_grade or 0)


@attrs.frozen
class LabWorsening:
    """One measurement day whose grade is worse than baseline for ``analyte``."""

    analyte: str
    term: str
    day: date
    value: float
    grade: int
    baseline_grade: int | None
    baseline_day: date | None
    refs: tuple[str, ...]


_DayGrade = tuple[int, float, tuple[str, ...]]  # (worst grade, lowest value, refs) of one day


_CUTS = {"anc": NEUTROPHIL_CUTS, "plt": PLATELET_CUTS, "hb": ANAEMIA_CUTS}


def _worst_by_day(labs: Iterable[LabPoint], analyte: str, lln: float | None) -> dict[date, _DayGrade]:
    out: dict[date, _DayGrade] = {}
    cuts, limit = _CUTS[analyte], DEFAULT_LLN[analyte] if lln is None else lln  # lab_grade, inlined
    for lab in labs:
        value = getattr(lab, analyte)
        if value is None:
            continue
        grade = _grade(value, cuts, limit)
        old = out.get(lab.day)
        if old is None:
            out[lab.day] = (grade, value, (lab.ref,))
        else:
            worst = min(old[1], value)  # cytopenia: the day's lowest value is its worst
            out[lab.day] = (max(old[0], grade), worst, old[2] + (lab.ref,))
    return out


def lab_worsenings(
    labs: Iterable[LabPoint], *, baseline_day: date, lln: dict[str, float] | None = None,
) -> tuple[LabWorsening, ...]:
    """Every measurement day after ``baseline_day`` graded worse than baseline, per analyte.

    Baseline = worst grade on the last measurement day on or before ``baseline_day`` (e.g. MSC D1);
    no baseline measurement means baseline grade 0 (reported as ``baseline_grade=None``).
    """
    labs = list(labs)
    out: list[LabWorsening] = []
    for analyte in ("anc", "plt", "hb"):
        by_day = _worst_by_day(labs, analyte, (lln or {}).get(analyte))
        before = [d for d in by_day if d <= baseline_day]
        base_day = max(before) if before else None
        base = by_day[base_day] if base_day is not None else None
        base_grade = base[0] if base else None
        for day in sorted(d for d in by_day if d > baseline_day):
            grade, value, refs = by_day[day]
            if is_worsening(base_grade, grade):
                out.append(LabWorsening(analyte, TERMS[analyte], day, value, grade, base_grade, base_day,
                                        refs + (base[2] if base else ())))
    return tuple(out)
