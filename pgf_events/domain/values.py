"""attrs value objects, one per record kind, validated for what they hold.

Each field declares how raw input is parsed (``metadata["parse"]``) and its invariants
(attrs validators). :meth:`Record.from_input` is the one path from a CLI option dict or a JSON
Lines object to a value object, so the same mistake gets the same message everywhere, and a
correction is revalidated exactly as if it were newly entered (:meth:`Record.corrected`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar

import attrs

from pgf_events.domain import parsing as p
from pgf_events.domain.errors import ValidationError

HB_G_PER_L_PER_G_PER_DL = 10.0
BILIRUBIN_UMOL_PER_MG_DL = 17.1
TYPED_CRITERIA = ("IN1", "IN4", "IN5", "EX1", "EX2", "EX3", "EX4", "EX5", "EX6", "EX7", "EX8")
DERIVED_CRITERIA = {
    "IN2": "age at screening, from the birth date",
    "IN3": "--kps and --expected-survival-months",
    "IN6": "the consent record",
}
SERIOUSNESS = (
    "death", "life-threatening", "hospitalisation", "disability", "congenital-anomaly",
    "important-medical-event",
)
RELATEDNESS = ("not", "unlikely", "possible", "probable", "definite")
CHRONIC_ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")


def _field(parse: Callable[[Any, str], Any], *, default: Any = attrs.NOTHING,
           validator: Any = None) -> Any:
    return attrs.field(default=default, validator=validator, metadata={"parse": parse})


def _opt(parse: Callable[[Any, str], Any], validator: Any = None) -> Any:
    return _field(parse, default=None, validator=attrs.validators.optional(validator) if validator else None)


def in_range(low: float, high: float, unit: str = "") -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        p.check_in_range(value, attribute.name, low, high, unit)
    return check


def _count(high: float) -> Callable[[Any, attrs.Attribute, Any], None]:
    """A cell count in 10^9/L; a value above the range that reads as a count per µL gets the conversion."""
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value > high:
            name = p.label(attribute.name)
            raise ValidationError(
                f"{name} {value:g} x10^9/L is out of range 0–{high:g} x10^9/L; if it was counted per µL, enter "
                f"{value / 1000:g} ({value:g}/µL = {value / 1000:g} x10^9/L)"
            )
        p.check_in_range(value, attribute.name, 0, high, "x10^9/L")
    return check


def _kps(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    p.check_in_range(value, "kps", 0, 100, "")
    if value % 10:
        raise ValidationError(f"--kps moves in steps of 10 (0, 10, ... 100), not {value}")


def _choice(*choices: str) -> Callable[[Any, str], str]:
    return lambda value, name: p.parse_choice(value, name, choices)


def _text(max_length: int = 200) -> Callable[[Any, str], str]:
    return lambda value, name: p.parse_text(value, name, max_length)


def _pairs(value: Any, option: str, example: str) -> list[tuple[Any, Any]]:
    """``{"K": v}``, ``["K=v", ...]`` or ``"K=v"`` -> ``[(K, v), ...]`` (CLI repeats and JSON objects alike)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"{option} must look like {example}")
    pairs = []
    for item in value:
        if not isinstance(item, str) or "=" not in item:
            raise ValidationError(f"{option} must look like {example}, not {item!r}")
        key, _, answer = item.partition("=")
        pairs.append((key, answer))
    return pairs


def _criteria(value: Any, name: str) -> dict[str, bool]:
    """``{"IN1": "yes"}`` or ``["IN1=yes", ...]`` -> ``{"IN1": True}``."""
    items = _pairs(value, "--criterion", "IN1=yes or EX6=no")
    criteria: dict[str, bool] = {}
    for code, answer in items:
        code = str(code).strip().upper()
        if code in DERIVED_CRITERIA:
            raise ValidationError(f"{code} is derived from {DERIVED_CRITERIA[code]}; it cannot be typed")
        if code not in TYPED_CRITERIA:
            raise ValidationError(f"unknown criterion {code!r}; typed criteria are {', '.join(TYPED_CRITERIA)}")
        parsed = p.parse_bool(answer, f"criterion {code}")
        if criteria.get(code, parsed) != parsed:
            raise ValidationError(
                f"--criterion {code} is given twice with different answers (yes and no); give it once"
            )
        criteria[code] = parsed
    return dict(sorted(criteria.items()))


def _seriousness(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"--serious must be a comma-separated list of {', '.join(SERIOUSNESS)}")
    return tuple(sorted({p.parse_choice(item, name, SERIOUSNESS) for item in value}))


def _organs(value: Any, name: str) -> dict[str, int]:
    pairs = _pairs(value, "--organ", "skin=2")
    organs: dict[str, int] = {}
    for organ, score in pairs:
        organ = p.parse_choice(str(organ), "organ", CHRONIC_ORGANS)
        number = p.parse_int(score, f"organ {organ}")
        p.check_in_range(number, f"organ_{organ}_score", 0, 3, "")
        if organs.get(organ, number) != number:
            raise ValidationError(f"--organ {organ} is given twice with different scores; give it once")
        organs[organ] = number
    return dict(sorted(organs.items()))


@attrs.frozen
class _FieldSpec:
    """What the hot paths need of a record class's attrs fields, computed once per class."""

    names: tuple[str, ...]
    date_names: tuple[str, ...]  # fields declared as a date or datetime (parsing guarantees the type)
    allowed: frozenset[str]  # field names and input-only options
    parsers: tuple[tuple[str, Callable[[Any, str], Any], bool], ...]  # (name, parse, required)


@functools.cache
def _spec(cls: type[Record]) -> _FieldSpec:
    fields = attrs.fields(cls)
    return _FieldSpec(
        names=tuple(a.name for a in fields),
        date_names=tuple(a.name for a in fields if "date" in str(a.type)),  # "date", "datetime | None", ...
        allowed=frozenset(a.name for a in fields) | frozenset(cls.INPUT_OPTIONS),
        parsers=tuple((a.name, a.metadata["parse"], a.default is attrs.NOTHING) for a in fields),
    )


@attrs.frozen
class Record:
    """Base of every record kind: a clinical fact as entered, already validated."""

    KIND: ClassVar[str] = ""
    DATE_FIELD: ClassVar[str] = "date"
    # Input-only options (units) that are folded into canonical fields by ``_normalise``.
    INPUT_OPTIONS: ClassVar[tuple[str, ...]] = ()
    # Dates of reporting rather than of care (an SAE can become known after the patient died).
    REPORTING_DATES: ClassVar[tuple[str, ...]] = ("aware",)

    @property
    def clinical_date(self) -> date:
        return getattr(self, self.DATE_FIELD)

    def clinical_dates(self) -> list[tuple[str, date]]:
        """The dates on which something happened to the patient (not when a site learnt of it)."""
        return [(name, day) for name, day in self.dates() if name not in self.REPORTING_DATES]

    def dates(self) -> list[tuple[str, date]]:
        """Every clinical date the record holds (checked against birth and the future)."""
        out = []
        for name in _spec(type(self)).date_names:
            value = getattr(self, name)
            if isinstance(value, datetime):
                out.append((name, value.date()))
            elif isinstance(value, date):
                out.append((name, value))
        return out

    def latest_date(self) -> date:
        """The latest of :meth:`dates` (every record holds at least one)."""
        latest = None
        for name in _spec(type(self)).date_names:
            value = getattr(self, name)
            if value is None:
                continue
            day = value.date() if isinstance(value, datetime) else value
            if latest is None or day > latest:
                latest = day
        if latest is None:
            raise ValueError(f"a {self.KIND} record holds no date")
        return latest

    def _stored_units(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The units of the stored (standardised) values a correction keeps, so they need not be retyped."""
        if getattr(self, "bilirubin", None) is not None and "bilirubin" not in changes:
            return {"bilirubin_unit": "µmol/L"}
        return {}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return _spec(cls).names

    @classmethod
    def _normalise(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return raw

    @classmethod
    def from_input(cls, raw: Mapping[str, Any]) -> Record:
        """Build from option values keyed by field name (``None`` means not given)."""
        spec = _spec(cls)
        given = {k: v for k, v in raw.items() if v is not None}
        unknown = sorted(k for k in given if k not in spec.allowed)
        if unknown:
            raise ValidationError(
                f"record {cls.KIND} has no option {', '.join(p.label(u) for u in unknown)}"
            )
        given = cls._normalise(given)
        values: dict[str, Any] = {}
        for name, parse, required in spec.parsers:
            if name in given:
                values[name] = parse(given[name], name)
            elif required:
                raise ValidationError(f"record {cls.KIND} needs {p.label(name)}")
        return cls(**values)

    def as_input(self) -> dict[str, Any]:
        """The fields as a dict (values not copied), in declaration order."""
        return {name: getattr(self, name) for name in _spec(type(self)).names}

    def corrected(self, changes: Mapping[str, Any]) -> tuple[Record, dict[str, Any]]:
        """The record with ``changes`` applied and revalidated, and the canonical changed fields."""
        unknown = sorted(set(changes) - _spec(type(self)).allowed)
        if unknown:
            raise ValidationError(
                f"a {self.KIND} record has no field {', '.join(unknown)}; "
                f"its fields are {', '.join(self.field_names())}"
            )
        merged = {**self._stored_units(changes), **self.as_input(), **changes}
        new = type(self).from_input(merged)
        old_values, new_values = self.as_input(), new.as_input()
        diff = {k: new_values[k] for k in self.field_names() if new_values[k] != old_values[k]}
        return new, diff


@attrs.frozen
class Registration(Record):
    KIND: ClassVar[str] = "register"
    site: str = _field(_text(64))
    birth_date: date = _field(p.parse_date)
    sex: str = _field(_choice("M", "F"))
    weight_kg: float = _field(p.parse_number, validator=in_range(20, 250, "kg"))
    transplant_date: date = _field(p.parse_date)
    donor_type: str | None = _opt(_text(64))
    diagnosis: str | None = _opt(_text(200))
    date: date | None = _opt(p.parse_date)  # registration date; defaults to the recording day

    @property
    def clinical_date(self) -> date:
        return self.date or self.transplant_date

    def __attrs_post_init__(self) -> None:
        if self.transplant_date < self.birth_date:
            raise ValidationError("--transplant-date is before --birth-date")


@attrs.frozen
class Screening(Record):
    KIND: ClassVar[str] = "screen"
    date: date = _field(p.parse_date)
    kps: int | None = _opt(p.parse_int, _kps)
    expected_survival_months: float | None = _opt(p.parse_number, in_range(0, 600, "months"))
    criterion: dict[str, bool] = _field(_criteria, default=attrs.Factory(dict))

    def __attrs_post_init__(self) -> None:
        if self.kps is None and self.expected_survival_months is None and not self.criterion:
            raise ValidationError(
                "a screening needs at least one of --kps, --expected-survival-months or --criterion"
            )


@attrs.frozen
class Consent(Record):
    KIND: ClassVar[str] = "consent"
    date: date = _field(p.parse_date)
    version: str | None = _opt(_text(64))


@attrs.frozen
class Enrolment(Record):
    KIND: ClassVar[str] = "enrol"
    date: date = _field(p.parse_date)
    pgf_type: str | None = _opt(_choice("primary", "secondary"))
    pgf_diagnosis_date: date | None = _opt(p.parse_date)

    def __attrs_post_init__(self) -> None:
        if self.pgf_diagnosis_date and self.pgf_diagnosis_date > self.date:
            raise ValidationError("--pgf-diagnosis-date is after the enrolment --date")


@attrs.frozen
class Infusion(Record):
    KIND: ClassVar[str] = "infusion"
    date: date = _field(p.parse_date)
    cells: float = _field(p.parse_number, validator=in_range(1, 1e12, "cells"))
    weight_kg: float = _field(p.parse_number, validator=in_range(20, 250, "kg"))
    lot: str | None = _opt(_text(64))

    @property
    def cells_per_kg(self) -> float:
        return self.cells / self.weight_kg

    def __attrs_post_init__(self) -> None:
        if self.cells <= 0:
            raise ValidationError("--cells must be more than 0")


@attrs.frozen
class Transfusion(Record):
    KIND: ClassVar[str] = "transfusion"
    date: date = _field(p.parse_date)
    product: str = _field(_choice("rbc", "platelets"))
    units: int = _field(p.parse_int, default=1, validator=in_range(1, 20, "units"))


@attrs.frozen
class LabPanel(Record):
    KIND: ClassVar[str] = "lab"
    INPUT_OPTIONS: ClassVar[tuple[str, ...]] = ("hb_unit", "bilirubin_unit")
    date: date = _field(p.parse_date)
    anc: float | None = _opt(p.parse_number, _count(100))
    plt: float | None = _opt(p.parse_number, _count(2000))
    hb: float | None = _opt(p.parse_number, in_range(20, 250, "g/L"))
    wbc: float | None = _opt(p.parse_number, _count(500))
    bilirubin: float | None = _opt(p.parse_number, in_range(0, 1000, "µmol/L"))

    @classmethod
    def _normalise(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return _convert_units(dict(raw))

    def __attrs_post_init__(self) -> None:
        if self.anc is None and self.plt is None and self.hb is None and self.wbc is None and self.bilirubin is None:
            raise ValidationError("a lab record needs at least one value (--anc, --plt, --hb, --wbc or --bilirubin)")


def _convert_units(raw: dict[str, Any]) -> dict[str, Any]:
    hb_unit = p.parse_choice(raw.pop("hb_unit"), "hb_unit", ("g/L", "g/dL")) if "hb_unit" in raw else "g/L"
    if "hb" in raw and hb_unit == "g/dL":
        raw["hb"] = round(p.parse_number(raw["hb"], "hb") * HB_G_PER_L_PER_G_PER_DL, 6)
    elif "hb" in raw:
        hb = p.parse_number(raw["hb"], "hb")
        if 2 <= hb < 20:
            raise ValidationError(
                f"--hb {hb:g} g/L is out of range 20–250 g/L; if it was measured in g/dL add --hb-unit g/dL"
            )
    if "bilirubin" in raw and "bilirubin_unit" not in raw:
        # 2.5 is a normal value in mg/dL and a low one in µmol/L: the unit is never guessed.
        raise ValidationError("--bilirubin needs its unit: add --bilirubin-unit µmol/L or --bilirubin-unit mg/dL")
    bili_unit = p.parse_choice(
        raw.pop("bilirubin_unit"), "bilirubin_unit", ("µmol/L", "umol/L", "mg/dL")
    ) if "bilirubin_unit" in raw else "µmol/L"
    if "bilirubin" in raw and bili_unit == "mg/dL":
        raw["bilirubin"] = round(p.parse_number(raw["bilirubin"], "bilirubin") * BILIRUBIN_UMOL_PER_MG_DL, 6)
    return raw


@attrs.frozen
class AdverseEvent(Record):
    KIND: ClassVar[str] = "ae"
    DATE_FIELD: ClassVar[str] = "onset"
    onset: date = _field(p.parse_date)
    term: str = _field(_text(200))
    grade: int = _field(p.parse_int, validator=in_range(1, 5, ""))
    serious: tuple[str, ...] = _field(_seriousness, default=())
    related: str | None = _opt(_choice(*RELATEDNESS))
    aware: datetime | None = _opt(p.parse_datetime)
    end: date | None = _opt(p.parse_date)
    outcome: str | None = _opt(_text(200))

    def __attrs_post_init__(self) -> None:
        if self.end and self.end < self.onset:
            raise ValidationError("--end is before --onset")
        if self.aware and self.aware.date() < self.onset:
            raise ValidationError("--aware is before --onset")
        if self.grade == 5 and "death" not in self.serious:
            raise ValidationError("a grade 5 (fatal) adverse event must be --serious death")


@attrs.frozen
class Infection(Record):
    KIND: ClassVar[str] = "infection"
    DATE_FIELD: ClassVar[str] = "onset"
    onset: date = _field(p.parse_date)
    site: str = _field(_text(100))
    grade: int = _field(p.parse_int, validator=in_range(1, 5, ""))
    organism: str | None = _opt(_text(100))


@attrs.frozen
class GvhdAssessment(Record):
    KIND: ClassVar[str] = "gvhd"
    INPUT_OPTIONS: ClassVar[tuple[str, ...]] = ("bilirubin_unit",)
    ACUTE: ClassVar[tuple[str, ...]] = ("skin_bsa", "bilirubin", "upper_gi", "stool_ml")
    date: date = _field(p.parse_date)
    chronic: bool = _field(p.parse_bool, default=False)
    skin_bsa: float | None = _opt(p.parse_number, in_range(0, 100, "%"))
    bullae: bool = _field(p.parse_bool, default=False)
    bilirubin: float | None = _opt(p.parse_number, in_range(0, 1000, "µmol/L"))
    upper_gi: bool | None = _opt(p.parse_bool)
    stool_ml: float | None = _opt(p.parse_number, in_range(0, 10000, "mL/day"))
    severe_pain: bool = _field(p.parse_bool, default=False)
    organ: dict[str, int] = _field(_organs, default=attrs.Factory(dict))

    @classmethod
    def _normalise(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return _convert_units(dict(raw))

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
    date: date = _field(p.parse_date)


@attrs.frozen
class Contact(Record):
    KIND: ClassVar[str] = "contact"
    date: date = _field(p.parse_date)
    status: str = _field(_choice("alive"))
    disease: str | None = _opt(_choice("free", "relapsed"))


@attrs.frozen
class Death(Record):
    KIND: ClassVar[str] = "death"
    date: date = _field(p.parse_date)
    cause: str | None = _opt(_text(200))


@attrs.frozen
class Withdrawal(Record):
    KIND: ClassVar[str] = "withdraw"
    date: date = _field(p.parse_date)
    reason: str = _field(_text(500))


RECORD_TYPES: dict[str, type[Record]] = {
    cls.KIND: cls
    for cls in (Registration, Screening, Consent, Enrolment, Infusion, Transfusion, LabPanel,
                AdverseEvent, Infection, GvhdAssessment, Relapse, Contact, Death, Withdrawal)
}


def build_record(kind: str, raw: Mapping[str, Any]) -> Record:
    try:
        cls = RECORD_TYPES[kind]
    except KeyError:
        raise ValidationError(f"unknown record kind {kind!r}; kinds are {', '.join(RECORD_TYPES)}") from None
    return cls.from_input(raw)
