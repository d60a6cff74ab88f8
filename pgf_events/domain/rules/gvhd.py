"""GVHD staging and grading (docs/rules.md, "Secondary endpoints": acute GVHD by MAGIC,
Harris et al. BBMT 2016; chronic GVHD by NIH 2014 global severity, Jagasia et al. BBMT 2015).

The stage edges are the published MAGIC/NIH definitions, not protocol parameters. Edges between
the table's whole-number rows are closed as follows (values are compared after conversion):
- skin, % BSA with active erythema: 0 = 0; 1 = (0, 25); 2 = [25, 50]; 3 = > 50;
  4 = > 50 with bullae/desquamation > 5% (bullae with <= 50% BSA stage by BSA alone);
- liver, total bilirubin mg/dL = µmol/L / 17.1, rounded to 1e-9 to absorb float noise
  (51.3 / 17.1 is 2.9999999999999996): 0 = < 2.0; 1 = [2.0, 3.0]; 2 = (3.0, 6.0];
  3 = (6.0, 15.0]; 4 = > 15.0, so a value between the table's "3" and "3.1" is stage 2;
- upper GI: 1 when persistent nausea, vomiting or anorexia is present;
- lower GI, stool mL/day: 0 = < 500; 1 = [500, 1000); 2 = [1000, 1500]; 3 = > 1500;
  4 = severe abdominal pain (± ileus or grossly bloody stool), whatever the volume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import attrs

from pgf_events.domain.vocabulary import BILIRUBIN_UMOL_PER_MG_DL, CHRONIC_ORGANS

__all__ = ["BILIRUBIN_UMOL_PER_MG_DL", "CHRONIC_ORGANS"]  # re-exported (defined once, in vocabulary)
SKIN_EDGES = (25.0, 50.0)  # % BSA: stage 2 is 25..50 inclusive
LIVER_EDGES_MG_DL = (2.0, 3.0, 6.0, 15.0)  # lower edge of stage 1, upper edges of stages 1..3
STOOL_EDGES_ML = (500.0, 1000.0, 1500.0)
SKIN_TO_GRADE = {0: 0, 1: 1, 2: 1, 3: 2, 4: 4}
LIVER_TO_GRADE = {0: 0, 1: 2, 2: 3, 3: 3, 4: 4}
UPPER_GI_TO_GRADE = {0: 0, 1: 2}
LOWER_GI_TO_GRADE = {0: 0, 1: 2, 2: 3, 3: 3, 4: 4}
CHRONIC_SEVERITIES = ("none", "mild", "moderate", "severe")


def skin_stage(bsa_pct: float, bullae: bool = False) -> int:
    """MAGIC skin stage from % body surface with active erythema (0-100) and the bullae flag."""
    if not 0 <= bsa_pct <= 100:
        raise ValueError(f"skin BSA must be between 0 and 100%, not {bsa_pct!r}")
    if bsa_pct == 0:
        return 0
    if bsa_pct < SKIN_EDGES[0]:
        return 1
    if bsa_pct <= SKIN_EDGES[1]:
        return 2
    return 4 if bullae else 3


def bilirubin_mg_dl(umol_l: float) -> float:
    """Total bilirubin µmol/L -> mg/dL (÷ 17.1), rounded to 1e-9 mg/dL."""
    if umol_l < 0:
        raise ValueError(f"bilirubin must not be negative, not {umol_l!r}")
    return round(umol_l / BILIRUBIN_UMOL_PER_MG_DL, 9)


def liver_stage_mg_dl(mg_dl: float) -> int:
    """MAGIC liver stage from total bilirubin in mg/dL (edges in the module docstring)."""
    low, s1, s2, s3 = LIVER_EDGES_MG_DL
    if mg_dl < low:
        return 0
    return 1 if mg_dl <= s1 else 2 if mg_dl <= s2 else 3 if mg_dl <= s3 else 4


def liver_stage(bilirubin_umol_l: float) -> int:
    """MAGIC liver stage from total bilirubin in µmol/L (converted to mg/dL first)."""
    return liver_stage_mg_dl(bilirubin_mg_dl(bilirubin_umol_l))


def upper_gi_stage(present: bool) -> int:
    """MAGIC upper GI stage: 1 with persistent nausea, vomiting or anorexia, else 0."""
    return 1 if present else 0


def lower_gi_stage(stool_ml_per_day: float, severe_pain: bool = False) -> int:
    """MAGIC lower GI stage from stool volume (mL/day) and the severe-pain flag."""
    if stool_ml_per_day < 0:
        raise ValueError(f"stool volume must not be negative, not {stool_ml_per_day!r}")
    if severe_pain:
        return 4
    a, b, c = STOOL_EDGES_ML
    return 0 if stool_ml_per_day < a else 1 if stool_ml_per_day < b else 2 if stool_ml_per_day <= c else 3


@attrs.frozen
class AcuteStages:
    """MAGIC organ stages; None = organ not assessed (counted as stage 0 for the grade)."""

    skin: int | None
    liver: int | None
    upper_gi: int | None
    lower_gi: int | None


def acute_grade(stages: AcuteStages) -> int:
    """Overall MAGIC grade 0-4 = max over organs of the docs/rules.md table."""
    return max(
        SKIN_TO_GRADE[stages.skin or 0], LIVER_TO_GRADE[stages.liver or 0],
        UPPER_GI_TO_GRADE[stages.upper_gi or 0], LOWER_GI_TO_GRADE[stages.lower_gi or 0],
    )


@attrs.frozen
class AcuteGvhdAssessment:
    day: date
    stages: AcuteStages
    grade: int
    bilirubin_mg_dl: float | None
    complete: bool  # every organ assessed
    refs: tuple[str, ...]


def acute_gvhd(
    *, day: date, ref: str, skin_bsa_pct: float | None = None, bullae: bool = False,
    bilirubin_umol_l: float | None = None, upper_gi: bool | None = None,
    stool_ml_per_day: float | None = None, severe_pain: bool = False,
) -> AcuteGvhdAssessment:
    """Stage every organ from raw measures of one assessment event and grade it (MAGIC)."""
    mg = None if bilirubin_umol_l is None else bilirubin_mg_dl(bilirubin_umol_l)
    lower: int | None = None
    if stool_ml_per_day is not None or severe_pain:
        lower = lower_gi_stage(stool_ml_per_day or 0.0, severe_pain)
    stages = AcuteStages(
        skin=None if skin_bsa_pct is None else skin_stage(skin_bsa_pct, bullae),
        liver=None if mg is None else liver_stage_mg_dl(mg),
        upper_gi=None if upper_gi is None else upper_gi_stage(upper_gi),
        lower_gi=lower,
    )
    complete = None not in (stages.skin, stages.liver, stages.upper_gi, stages.lower_gi)
    return AcuteGvhdAssessment(day, stages, acute_grade(stages), mg, complete, (ref,))


def max_acute_grade(assessments: Iterable[AcuteGvhdAssessment]) -> int | None:
    """Maximum overall grade over assessments; None when there is none."""
    return max((a.grade for a in assessments), default=None)


def chronic_severity(scores: Mapping[str, int]) -> str:
    """NIH 2014 global severity from organ scores 0-3; organs not named score 0.

    severe: any organ 3, or lungs >= 2; moderate: >= 3 organs involved, or any non-lung organ 2,
    or lungs 1; mild: 1-2 organs, none lung, each at most 1; none otherwise.
    """
    for organ, score in scores.items():
        if organ not in CHRONIC_ORGANS:
            raise ValueError(f"unknown chronic GVHD organ {organ!r}; expected one of {', '.join(CHRONIC_ORGANS)}")
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 3:
            raise ValueError(f"chronic GVHD score for {organ} must be 0, 1, 2 or 3, not {score!r}")
    lungs = scores.get("lungs", 0)
    involved = [o for o, s in scores.items() if s > 0]
    if any(s == 3 for s in scores.values()) or lungs >= 2:
        return "severe"
    if len(involved) >= 3 or lungs == 1 or any(s == 2 for o, s in scores.items() if o != "lungs"):
        return "moderate"
    return "mild" if involved else "none"


@attrs.frozen
class ChronicGvhdAssessment:
    day: date
    scores: tuple[tuple[str, int], ...]  # (organ, score) in CHRONIC_ORGANS order, all 8 organs
    severity: str
    refs: tuple[str, ...]


def chronic_gvhd(*, day: date, ref: str, scores: Mapping[str, int]) -> ChronicGvhdAssessment:
    """Score one chronic GVHD assessment event (NIH 2014 global severity)."""
    severity = chronic_severity(scores)
    full = tuple((o, scores.get(o, 0)) for o in CHRONIC_ORGANS)
    return ChronicGvhdAssessment(day, full, severity, (ref,))


def max_chronic_severity(assessments: Iterable[ChronicGvhdAssessment]) -> str | None:
    """Worst severity over assessments ('none' < 'mild' < 'moderate' < 'severe'); None when there is none."""
    return max((a.severity for a in assessments), key=CHRONIC_SEVERITIES.index, default=None)
