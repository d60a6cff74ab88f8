"""How a value-class field is declared: its parser, validators and the metadata the rest reads.

A field's ``metadata`` is the single description of it that every layer uses:

- ``parse``: raw input (CLI string or JSON value) -> Python value, raising ValidationError;
- ``unit``: the unit of the stored value (ODM MeasurementUnit, SDTM ``--ORRESU``), or None;
- ``range``: ``(low, high)`` in that unit, checked on entry, or None;
- ``help`` and ``metavar``: the text of the option that enters it (``pgf record KIND --help``);
- ``multiple`` (repeatable option) and ``flag`` (an option without a value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from pgf_events.domain import parsing as p
from pgf_events.domain import vocabulary as v
from pgf_events.domain.errors import ValidationError

Parse = Callable[[Any, str], Any]
DATE = "YYYY-MM-DD"


@attrs.frozen
class InputOption:
    """An option that is not a stored field (an entry unit folded into a field by ``_normalise``)."""

    help: str
    metavar: str | None = None
    after: str | None = None  # the field whose option it follows in --help


def field(parse: Parse, *, default: Any = attrs.NOTHING, validator: Any = None, help: str = "",  # noqa: A002
          unit: str | None = None, range: tuple[float, float] | None = None,  # noqa: A002
          shown_unit: str | None = None, metavar: str | None = None, multiple: bool = False,
          flag: bool = False, derived: bool = False) -> Any:
    """A field; ``range`` adds a range check whose message names ``shown_unit`` (default ``unit``).
    ``derived``: filled by the class's ``_normalise`` (e.g. a value as entered), never a CLI option."""
    validators = [validator] if validator else []
    if range is not None:
        validators.insert(0, in_range(range[0], range[1], unit if shown_unit is None else shown_unit))
    combined = None
    if validators:
        combined = validators[0] if len(validators) == 1 else attrs.validators.and_(*validators)
        if default is None:
            combined = attrs.validators.optional(combined)
    return attrs.field(default=default, validator=combined, metadata={
        "parse": parse, "unit": unit, "range": range, "help": help, "metavar": metavar,
        "multiple": multiple, "flag": flag, "derived": derived,
    })


def optional(parse: Parse, **kwargs: Any) -> Any:
    """A field that may be left out (stored as None)."""
    return field(parse, default=None, **kwargs)


def date_field(help: str, *, required: bool = True) -> Any:  # noqa: A002
    if required:
        return field(p.parse_date, help=f"{help} ({DATE}).", metavar=DATE)
    return field(p.parse_date, default=None, help=f"{help} ({DATE}).", metavar=DATE)


COUNT_UNITS = ("10^9/L", "x10^9/L")  # cell counts: a value above range may be a count per µL


def in_range(low: float, high: float, unit: str | None = "") -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if unit in COUNT_UNITS and value > high:
            raise ValidationError(
                f"{p.label(attribute.name)} {value:g} {unit} is out of range {low:g}–{high:g} {unit}; if it was "
                f"counted per µL, enter {value / 1000:g} ({value:g}/µL = {value / 1000:g} x10^9/L)"
            )
        p.check_in_range(value, attribute.name, low, high, unit or "")
    return check


def choice(*choices: str) -> Parse:
    """A parser accepting one of ``choices``; the choices stay readable on it (``.choices``: ODM CodeLists)."""
    def parse(value: Any, name: str) -> str:
        return p.parse_choice(value, name, choices)
    parse.choices = choices  # type: ignore[attr-defined]
    return parse


def cdisc_term(terms: tuple[str, ...], synonyms: Mapping[str, str] | None = None) -> Parse:
    """A CDISC term, case-insensitive, '-' or '_' for spaces and '/' optional between the halves
    ('recovered-resolved'); ``synonyms`` maps older free-text words to a term."""
    def key(text: str) -> str:
        return " ".join(text.lower().replace("-", " ").replace("_", " ").replace("/", " ").split())

    table = {key(t): t for t in terms} | {key(k): t for k, t in (synonyms or {}).items()}

    def parse(value: Any, name: str) -> str:
        if isinstance(value, str) and key(value) in table:
            return table[key(value)]
        raise ValidationError(f"{p.label(name)} must be one of {', '.join(terms)}, not {value!r}")
    parse.choices = terms  # type: ignore[attr-defined]  # ODM CodeLists list them
    return parse


def text(max_length: int = 200) -> Parse:
    return lambda value, name: p.parse_text(value, name, max_length)


def pairs(value: Any, option: str, example: str) -> list[tuple[Any, Any]]:
    """``{"K": v}``, ``["K=v", ...]`` or ``"K=v"`` -> ``[(K, v), ...]`` (CLI repeats and JSON objects alike)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"{option} must look like {example}")
    out = []
    for item in value:
        if not isinstance(item, str) or "=" not in item:
            raise ValidationError(f"{option} must look like {example}, not {item!r}")
        key, _, answer = item.partition("=")
        out.append((key, answer))
    return out


def criteria(value: Any, name: str) -> dict[str, bool]:
    """``{"IN1": "yes"}`` or ``["IN1=yes", ...]`` -> ``{"IN1": True}``."""
    items = pairs(value, "--criterion", "IN1=yes or EX6=no")
    out: dict[str, bool] = {}
    for code, answer in items:
        code = str(code).strip().upper()
        if code in v.DERIVED_CRITERIA:
            raise ValidationError(f"{code} is derived from {v.DERIVED_CRITERIA[code]}; it cannot be typed")
        if code not in v.TYPED_CRITERIA:
            raise ValidationError(f"unknown criterion {code!r}; typed criteria are {', '.join(v.TYPED_CRITERIA)}")
        parsed = p.parse_bool(answer, f"criterion {code}")
        if out.get(code, parsed) != parsed:
            raise ValidationError(f"--criterion {code} is given twice with different answers (yes and no); give it once")
        out[code] = parsed
    return dict(sorted(out.items()))


def seriousness(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"--serious must be a comma-separated list of {', '.join(v.SERIOUSNESS)}")
    return tuple(sorted({p.parse_choice(item, name, v.SERIOUSNESS) for item in value}))


def organs(value: Any, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for organ, score in pairs(value, "--organ", "skin=2"):
        organ = p.parse_choice(str(organ), "organ", v.CHRONIC_ORGANS)
        number = p.parse_int(score, f"organ {organ}")
        p.check_in_range(number, f"organ_{organ}_score", 0, 3, "")
        if out.get(organ, number) != number:
            raise ValidationError(f"--organ {organ} is given twice with different scores; give it once")
        out[organ] = number
    return dict(sorted(out.items()))


def _keep_as_entered(raw: dict[str, Any], name: str, unit: str) -> None:
    """v2: the value and unit exactly as entered (``7.2 g/dL``) beside the standardised value; a
    record corrected without a new value keeps what was entered first."""
    key = f"{name}_as_entered"
    if name in raw and key not in raw:
        value = raw[name]
        # An integer too large for a float is left for parse_number to refuse (f"{value:g}" would overflow).
        number = isinstance(value, (int, float)) and not (isinstance(value, int) and abs(value) > p.MAX_MAGNITUDE)
        text = value.strip() if isinstance(value, str) else f"{value:g}" if number else None
        if text:
            raw[key] = f"{text} {unit}"


def convert_units(raw: dict[str, Any]) -> dict[str, Any]:
    """Fold ``hb_unit`` and ``bilirubin_unit`` into ``hb`` (g/L) and ``bilirubin`` (µmol/L)."""
    hb_unit = p.parse_choice(raw.pop("hb_unit"), "hb_unit", v.HB_UNITS) if "hb_unit" in raw else "g/L"
    _keep_as_entered(raw, "hb", hb_unit)
    if "hb" in raw and hb_unit == "g/dL":
        raw["hb"] = round(p.parse_number(raw["hb"], "hb") * v.HB_G_PER_L_PER_G_PER_DL, 6)
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
        raw.pop("bilirubin_unit"), "bilirubin_unit", v.BILIRUBIN_UNITS
    ) if "bilirubin_unit" in raw else "µmol/L"
    _keep_as_entered(raw, "bilirubin", bili_unit)
    if "bilirubin" in raw and bili_unit == "mg/dL":
        raw["bilirubin"] = round(p.parse_number(raw["bilirubin"], "bilirubin") * v.BILIRUBIN_UMOL_PER_MG_DL, 6)
    return raw
