"""attrs value objects, one per record kind, validated for what they hold.

Each field declares how raw input is parsed, its unit and range, and the help of the option that
enters it (:mod:`pgf_events.domain.fields`); the record-kind registry
(:mod:`pgf_events.domain.kinds`) ties each class to its event, command and export names.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, ClassVar

import attrs

from pgf_events.domain import parsing as p
from pgf_events.domain import vocabulary as v
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.fields import (
    InputOption,
    cdisc_term,
    choice,
    convert_units,
    criteria,
    date_field,
    field,
    optional,
    organs,
    seriousness,
    text,
)
from pgf_events.domain.record import Record
from pgf_events.domain.vocabulary import (
    BILIRUBIN_UMOL_PER_MG_DL,
    CHRONIC_ORGANS,
    CONTACT_STATUSES,
    DERIVED_CRITERIA,
    DISEASE_STATUSES,
    HB_G_PER_L_PER_G_PER_DL,
    PGF_TYPES,
    PRODUCTS,
    RELATEDNESS,
    SERIOUSNESS,
    SEXES,
    TYPED_CRITERIA,
)

# Re-exported: callers read the base class and the vocabularies through ``vo``.
__all__ = ["BILIRUBIN_UMOL_PER_MG_DL", "CHRONIC_ORGANS", "DERIVED_CRITERIA", "HB_G_PER_L_PER_G_PER_DL",
           "RELATEDNESS", "SERIOUSNESS", "TYPED_CRITERIA", "Record"]

COUNT_UNIT, SHOWN_COUNT_UNIT = "10^9/L", "x10^9/L"
EARLIEST_ZONE = timezone(timedelta(hours=14))  # the first place on Earth where a day begins
BILIRUBIN_HELP = "Total bilirubin; needs --bilirubin-unit (µmol/L or mg/dL)."


def _kps(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    p.check_in_range(value, "kps", 0, 100, "")
    if value % 10:
        raise ValidationError(f"--kps moves in steps of 10 (0, 10, ... 100), not {value}")


@attrs.frozen
class Registration(Record):
    KIND: ClassVar[str] = "register"
    site: str = field(text(64), help="Study site code.")
    birth_date: date = date_field("Birth date")
    sex: str = field(choice(*SEXES), help="M or F.", metavar="M|F")
    weight_kg: float = field(p.parse_number, range=(20, 250), unit="kg", help="Body weight in kg (20–250).",
                             metavar="KG")
    transplant_date: date = date_field("Allogeneic HSCT date, day 0")
    donor_type: str | None = optional(text(64), help="Donor type, e.g. haploidentical, matched-sibling, unrelated.")
    diagnosis: str | None = optional(text(200), help="Underlying disease, e.g. AML.")
    # registration date; defaults to the recording day
    date: date | None = date_field("Registration date (default: today, UTC)", required=False)

    @property
    def clinical_date(self) -> dt.date:
        return self.date or self.transplant_date

    def __attrs_post_init__(self) -> None:
        if self.transplant_date < self.birth_date:
            raise ValidationError("--transplant-date is before --birth-date")


@attrs.frozen
class Screening(Record):
    KIND: ClassVar[str] = "screen"
    date: date = date_field("Screening date")
    kps: int | None = optional(p.parse_int, validator=_kps, metavar="N",
                               help="Karnofsky performance status, 0–100 in steps of 10 (IN3 needs > 60).")
    expected_survival_months: float | None = optional(
        p.parse_number, range=(0, 600), unit="months", metavar="N", help="Expected survival in months (IN3 needs > 3).")
    criterion: dict[str, bool] = field(
        criteria, default=attrs.Factory(dict), multiple=True, metavar="CODE=yes|no",
        help="CODE=yes|no for IN1, IN4, IN5, EX1–EX8 (yes = the statement is true). Repeatable.")

    def __attrs_post_init__(self) -> None:
        if self.kps is None and self.expected_survival_months is None and not self.criterion:
            raise ValidationError(
                "a screening needs at least one of --kps, --expected-survival-months or --criterion"
            )


@attrs.frozen
class Consent(Record):
    KIND: ClassVar[str] = "consent"
    date: date = date_field("Date consent was signed")
    version: str | None = optional(text(64), help="Consent form version.")


@attrs.frozen
class Enrolment(Record):
    KIND: ClassVar[str] = "enrol"
    date: date = date_field("Enrolment date")
    pgf_type: str | None = optional(choice(*PGF_TYPES), help="primary or secondary poor graft function.",
                                    metavar="primary|secondary")
    pgf_diagnosis_date: dt.date | None = date_field("Date PGF was diagnosed", required=False)

    def __attrs_post_init__(self) -> None:
        if self.pgf_diagnosis_date and self.pgf_diagnosis_date > self.date:
            raise ValidationError("--pgf-diagnosis-date is after the enrolment --date")


@attrs.frozen
class Infusion(Record):
    KIND: ClassVar[str] = "infusion"
    date: date = date_field("Infusion date")
    cells: float = field(p.parse_number, range=(1, 1e12), unit="cells", metavar="N",
                         help="Total viable cells infused, e.g. 6.5e7.")
    weight_kg: float = field(p.parse_number, range=(20, 250), unit="kg", metavar="KG",
                             help="Body weight used for this dose, kg.")
    lot: str | None = optional(text(64), help="MSC product lot.")

    @property
    def cells_per_kg(self) -> float:
        return self.cells / self.weight_kg

    def __attrs_post_init__(self) -> None:
        if self.cells <= 0:
            raise ValidationError("--cells must be more than 0")


@attrs.frozen
class Transfusion(Record):
    KIND: ClassVar[str] = "transfusion"
    date: date = date_field("Transfusion date")
    product: str = field(choice(*PRODUCTS), help="rbc or platelets.", metavar="rbc|platelets")
    units: int = field(p.parse_int, default=1, range=(1, 20), shown_unit="units", help="Units given (default 1).",
                       metavar="N")


@attrs.frozen
class LabPanel(Record):
    KIND: ClassVar[str] = "lab"
    INPUT_OPTIONS: ClassVar[Mapping[str, InputOption]] = {
        "hb_unit": InputOption("g/L (default) or g/dL (converted x10).", "g/L|g/dL", after="hb"),
        "bilirubin_unit": InputOption("µmol/L or mg/dL (converted x17.1); required with --bilirubin.", "UNIT",
                                      after="bilirubin"),
    }
    date: date = date_field("Sample date")
    anc: float | None = optional(p.parse_number, range=(0, 100), unit=COUNT_UNIT, shown_unit=SHOWN_COUNT_UNIT,
                                 metavar="X", help="Absolute neutrophil count, 10^9/L (0–100).")
    plt: float | None = optional(p.parse_number, range=(0, 2000), unit=COUNT_UNIT, shown_unit=SHOWN_COUNT_UNIT,
                                 metavar="X", help="Platelets, 10^9/L (0–2000).")
    hb: float | None = optional(p.parse_number, range=(20, 250), unit="g/L", metavar="X",
                                help="Haemoglobin, g/L (20–250) unless --hb-unit g/dL.")
    wbc: float | None = optional(p.parse_number, range=(0, 500), unit=COUNT_UNIT, shown_unit=SHOWN_COUNT_UNIT,
                                 metavar="X", help="White cells, 10^9/L.")
    bilirubin: float | None = optional(p.parse_number, range=(0, 1000), unit="µmol/L", metavar="X",
                                       help=BILIRUBIN_HELP)
    hb_as_entered: str | None = optional(text(40), derived=True, help="Hb exactly as entered, e.g. 7.2 g/dL.")
    bilirubin_as_entered: str | None = optional(text(40), derived=True, help="Bilirubin as entered.")

    @classmethod
    def _normalise(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return convert_units(dict(raw))

    @classmethod
    def from_input(cls, raw: Mapping[str, Any]) -> Record:
        """:meth:`Record.from_input`, straight-line for the usual line of a lab migration (a date and
        counts as JSON numbers, no units): the same values reach the same constructor (whose
        validators check the ranges), and anything else takes the general path."""
        values = _plain_lab(raw)
        return cls(**values) if values is not None else super().from_input(raw)

    def corrected(self, changes: Mapping[str, Any]) -> tuple[Record, dict[str, Any]]:
        """A corrected value is entered anew: its as-entered text follows it (unless given itself)."""
        base = self
        if "hb" in changes and "hb_as_entered" not in changes:
            base = attrs.evolve(base, hb_as_entered=None)
        if "bilirubin" in changes and "bilirubin_as_entered" not in changes:
            base = attrs.evolve(base, bilirubin_as_entered=None)
        return Record.corrected(base, changes)

    def __attrs_post_init__(self) -> None:
        if self.anc is None and self.plt is None and self.hb is None and self.wbc is None and self.bilirubin is None:
            raise ValidationError("a lab record needs at least one value (--anc, --plt, --hb, --wbc or --bilirubin)")


_PLAIN_COUNTS = frozenset(("anc", "plt", "hb", "wbc"))


def _plain_lab(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """What :meth:`Record.from_input` passes to ``LabPanel(...)`` for a date given as text and counts
    given as JSON numbers (no unit, no bilirubin, nothing as entered), or None for any other input.

    The general path's steps for such input: values left out (None) are dropped; the date is parsed
    (its errors are the general path's, as it parses the date first); a number becomes a float
    (``parse_number``: finite, at most ``MAX_MAGNITUDE``); hb, in g/L by default, keeps its text as
    entered (``_keep_as_entered``: ``f"{value:g} g/L"``) and refuses 2 <= hb < 20 (taken as g/dL: the
    general path gives that message); every range is checked by the constructor's validators."""
    day = raw.get("date")
    if type(day) is not str:
        return None
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or name == "date":
            continue
        kind = type(value)
        if name not in _PLAIN_COUNTS or (kind is not float and kind is not int):
            return None
        if abs(value) > p.MAX_MAGNITUDE:  # before float(): a JSON integer may have hundreds of digits
            return None
        number = float(value)
        if not math.isfinite(number):
            return None
        values[name] = number
    if not values:
        return None
    hb = values.get("hb")
    if hb is not None:
        if 2 <= hb < 20:
            return None
        values["hb_as_entered"] = f"{raw['hb']:g} g/L"
    values["date"] = p.parse_date(day, "date")
    return values


@attrs.frozen
class AdverseEvent(Record):
    KIND: ClassVar[str] = "ae"
    DATE_FIELD: ClassVar[str] = "onset"
    onset: date = date_field("Onset date")
    term: str = field(text(200), help="Adverse event term (CTCAE/MedDRA).")
    grade: int = field(p.parse_int, range=(1, 5), help="CTCAE v5 grade 1–5.", metavar="1-5")
    serious: tuple[str, ...] = field(seriousness, default=(), metavar="CRITERIA",
                                     help=f"Comma-separated: {', '.join(SERIOUSNESS)}.")
    related: str | None = optional(choice(*RELATEDNESS), metavar="LEVEL",
                                   help=f"Relatedness to MSC: {', '.join(RELATEDNESS)}.")
    aware: datetime | None = optional(p.parse_datetime, metavar="DATE/TIME",
                                      help="When the site became aware (YYYY-MM-DD or YYYY-MM-DDTHH:MM, "
                                           "site time unless an offset is given).")
    end: date | None = date_field("Resolution date", required=False)
    outcome: str | None = optional(cdisc_term(v.AE_OUTCOMES, v.LEGACY_AE_OUTCOMES), metavar="TERM",
                                   help=f"Outcome (CDISC AEOUT): {'; '.join(v.AE_OUTCOMES)}.")
    expected: bool | None = optional(p.parse_bool, metavar="yes|no",
                                     help="Expected per the reference safety information (missing: unexpected).")
    action: str | None = optional(cdisc_term(v.AE_ACTIONS), metavar="TERM",
                                  help=f"Action taken with MSC (CDISC AEACN): {'; '.join(v.AE_ACTIONS)}.")

    def __attrs_post_init__(self) -> None:
        if self.end and self.end < self.onset:
            raise ValidationError("--end is before --onset")
        # Onset is a site-local date and aware a UTC time: it cannot be before the onset day began
        # anywhere (UTC+14); the site's own zone is applied when the time is typed.
        if self.aware and self.aware < datetime.combine(self.onset, time.min, tzinfo=EARLIEST_ZONE):
            raise ValidationError("--aware is before --onset")
        if self.grade == 5 and "death" not in self.serious:
            raise ValidationError("a grade 5 (fatal) adverse event must be --serious death")


@attrs.frozen
class Infection(Record):
    KIND: ClassVar[str] = "infection"
    DATE_FIELD: ClassVar[str] = "onset"
    onset: date = date_field("Onset date")
    site: str = field(text(100), help="Site of infection, e.g. lung, blood, urinary tract.")
    grade: int = field(p.parse_int, range=(1, 5), help="CTCAE v5 grade 1–5.", metavar="1-5")
    organism: str | None = optional(text(100), help="Organism, if known.")


@attrs.frozen
class GvhdAssessment(Record):
    KIND: ClassVar[str] = "gvhd"
    INPUT_OPTIONS: ClassVar[Mapping[str, InputOption]] = {
        "bilirubin_unit": InputOption("µmol/L or mg/dL; required with --bilirubin.", "UNIT", after="bilirubin"),
    }
    ACUTE: ClassVar[tuple[str, ...]] = ("skin_bsa", "bilirubin", "upper_gi", "stool_ml")
    date: date = date_field("Assessment date")
    chronic: bool = field(p.parse_bool, default=False, flag=True,
                          help="A chronic GVHD assessment (NIH organ scores).")
    skin_bsa: float | None = optional(p.parse_number, range=(0, 100), unit="%", metavar="PCT",
                                      help="Body surface with active erythema, % (0–100).")
    bullae: bool = field(p.parse_bool, default=False, flag=True, help="Bullae / desquamation over 5% BSA.")
    bilirubin: float | None = optional(p.parse_number, range=(0, 1000), unit="µmol/L", metavar="X",
                                       help=BILIRUBIN_HELP)
    upper_gi: bool | None = optional(p.parse_bool, metavar="yes|no",
                                     help="Persistent nausea, vomiting or anorexia: yes or no.")
    stool_ml: float | None = optional(p.parse_number, range=(0, 10000), unit="mL/day", metavar="N",
                                      help="Stool volume, mL/day.")
    severe_pain: bool = field(p.parse_bool, default=False, flag=True,
                              help="Severe abdominal pain, ileus or grossly bloody stool.")
    organ: dict[str, int] = field(organs, default=attrs.Factory(dict), multiple=True, metavar="NAME=SCORE",
                                  help=f"NAME=SCORE (0–3) for {', '.join(CHRONIC_ORGANS)}. Repeatable.")

    @classmethod
    def _normalise(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return convert_units(dict(raw))

    def __attrs_post_init__(self) -> None:
        acute_given = [n for n in self.ACUTE if getattr(self, n) is not None]
        if self.chronic:
            if acute_given or self.bullae or self.severe_pain:
                raise ValidationError("a chronic GVHD assessment takes --organ scores, not acute measures")
            if not self.organ:
                raise ValidationError("a chronic GVHD assessment needs at least one --organ NAME=SCORE")
        else:
            if self.organ:
                raise ValidationError("--organ scores need --chronic")
            if not acute_given:
                raise ValidationError(
                    "an acute GVHD assessment needs --skin-bsa, --bilirubin, --upper-gi or --stool-ml"
                )
            if self.bullae and self.skin_bsa is None:
                raise ValidationError("--bullae needs --skin-bsa")
            if self.severe_pain and self.stool_ml is None:
                raise ValidationError("--severe-pain needs --stool-ml")


@attrs.frozen
class Relapse(Record):
    KIND: ClassVar[str] = "relapse"
    date: date = date_field("Date relapse was diagnosed")


@attrs.frozen
class Contact(Record):
    KIND: ClassVar[str] = "contact"
    date: date = date_field("Contact date")
    status: str = field(choice(*CONTACT_STATUSES), help="alive.", metavar="alive")
    disease: str | None = optional(choice(*DISEASE_STATUSES), metavar="free|relapsed",
                                   help="free or relapsed (the disease assessment at this contact).")


@attrs.frozen
class Death(Record):
    KIND: ClassVar[str] = "death"
    date: date = date_field("Date of death")
    cause: str | None = optional(text(200), help="Cause of death.")


@attrs.frozen
class Withdrawal(Record):
    KIND: ClassVar[str] = "withdraw"
    date: date = date_field("Withdrawal date")
    reason: str = field(text(500), help="Why the patient was withdrawn.")


@attrs.frozen
class VitalSigns(Record):
    """Temperature, pulse, blood pressure and oxygen saturation at one time point (e.g. around an infusion)."""

    KIND: ClassVar[str] = "vitals"
    VALUES: ClassVar[tuple[str, ...]] = ("temperature", "pulse", "systolic", "diastolic", "spo2")
    date: date = date_field("Measurement date")
    timepoint: str | None = optional(text(64), help="When, e.g. pre-infusion, 15 min post-infusion.")
    temperature: float | None = optional(p.parse_number, range=(30, 45), unit="°C", metavar="C",
                                         help="Body temperature, °C (30–45).")
    pulse: int | None = optional(p.parse_int, range=(20, 250), unit="beats/min", metavar="N",
                                 help="Pulse rate, beats/min (20–250).")
    systolic: int | None = optional(p.parse_int, range=(40, 300), unit="mmHg", metavar="MMHG",
                                    help="Systolic blood pressure, mmHg (40–300); with --diastolic.")
    diastolic: int | None = optional(p.parse_int, range=(20, 200), unit="mmHg", metavar="MMHG",
                                     help="Diastolic blood pressure, mmHg (20–200); with --systolic.")
    spo2: float | None = optional(p.parse_number, range=(50, 100), unit="%", metavar="PCT",
                                  help="Oxygen saturation (SpO2), % (50–100).")

    def __attrs_post_init__(self) -> None:
        if all(getattr(self, name) is None for name in self.VALUES):
            raise ValidationError(
                "a vitals record needs at least one value (--temperature, --pulse, --systolic/--diastolic or --spo2)")
        if (self.systolic is None) != (self.diastolic is None):
            raise ValidationError("a blood pressure needs both --systolic and --diastolic")
        if self.systolic is not None and self.diastolic is not None and self.diastolic >= self.systolic:
            raise ValidationError(f"--diastolic {self.diastolic} mmHg must be below --systolic {self.systolic} mmHg")
