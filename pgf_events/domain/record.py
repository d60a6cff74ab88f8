"""The base of every value class: a clinical fact as entered, already validated.

Each field declares how raw input is parsed and what it means (:mod:`pgf_events.domain.fields`).
:meth:`Record.from_input` is the one path from a CLI option dict or a JSON Lines object to a value
object, so the same mistake gets the same message everywhere, and a correction is revalidated
exactly as if it were newly entered (:meth:`Record.corrected`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar

import attrs

from pgf_events.domain import parsing as p
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.fields import InputOption


@attrs.frozen
class _FieldSpec:
    """What the hot paths need of a record class's attrs fields, computed once per class."""

    names: tuple[str, ...]
    date_names: tuple[str, ...]  # fields declared as a date or datetime (parsing guarantees the type)
    clinical_names: tuple[str, ...]  # the date_names that are not REPORTING_DATES
    allowed: frozenset[str]  # field names and input-only options
    parsers: tuple[tuple[str, Callable[[Any, str], Any], bool], ...]  # (name, parse, required)


_SPECS: dict[type, _FieldSpec] = {}


def _spec(cls: type[Record]) -> _FieldSpec:
    try:
        return _SPECS[cls]
    except KeyError:
        spec = _SPECS[cls] = _field_spec(cls)
        return spec


def _field_spec(cls: type[Record]) -> _FieldSpec:
    fields = attrs.fields(cls)
    date_names = tuple(a.name for a in fields if "date" in str(a.type))  # "date", "datetime | None", ...
    return _FieldSpec(
        names=tuple(a.name for a in fields),
        date_names=date_names,
        clinical_names=tuple(n for n in date_names if n not in cls.REPORTING_DATES),
        allowed=frozenset(a.name for a in fields) | frozenset(cls.INPUT_OPTIONS),
        parsers=tuple((a.name, a.metadata["parse"], a.default is attrs.NOTHING) for a in fields),
    )


@attrs.frozen
class Record:
    """Base of every record kind: a clinical fact as entered, already validated."""

    KIND: ClassVar[str] = ""
    DATE_FIELD: ClassVar[str] = "date"
    # Input-only options (units) that are folded into canonical fields by ``_normalise``.
    INPUT_OPTIONS: ClassVar[Mapping[str, InputOption]] = {}
    # Dates of reporting rather than of care (an SAE can become known after the patient died).
    REPORTING_DATES: ClassVar[tuple[str, ...]] = ("aware",)

    @property
    def clinical_date(self) -> date:
        return getattr(self, self.DATE_FIELD)

    def clinical_dates(self) -> list[tuple[str, date]]:
        """The dates on which something happened to the patient (not when a site learnt of it)."""
        return [(name, day) for name, day in self.dates() if name not in self.REPORTING_DATES]

    def latest_clinical_day(self) -> date | None:
        """The latest of :meth:`clinical_dates` (None if there is none), without building the list:
        a replay asks it of every record."""
        latest = None
        for name in _spec(type(self)).clinical_names:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.date()
            elif not isinstance(value, date):
                continue
            if latest is None or value > latest:
                latest = value
        return latest

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

    def _stored_units(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The units of the stored (standardised) values a correction keeps, so they need not be retyped."""
        if getattr(self, "bilirubin", None) is not None and "bilirubin" not in changes:
            return {"bilirubin_unit": "µmol/L"}
        return {}

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
