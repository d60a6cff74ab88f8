"""Plain input records the projections build from events, for the pure rule functions.

Each record carries ``ref``, the reference of the source event (``"S001#7"``), so every derived
result can list the events it came from and a reviewer can re-derive it (docs/rules.md,
opening paragraph). Values are in the units of docs/rules.md "Laboratory conventions":
ANC and PLT in 10^9/L, Hb in g/L; unit conversion happens on import, not here.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import attrs
from attrs import validators as v

from pgf_events.domain.vocabulary import PRODUCTS as TRANSFUSION_PRODUCTS

__all__ = ["TRANSFUSION_PRODUCTS"]  # the vocabulary's products, re-exported


def _optional_non_negative(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, not {value!r}")
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, not {value!r}")
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def days_between(start: date, end: date) -> int:
    """Signed whole days from ``start`` to ``end`` (``end - start``); Day 0 = ``start``.

    With ``start`` = transplant date this is the "Day +N" post-HSCT number; with ``start`` = MSC D1
    it is days since the first infusion (treatment day N = result + 1).
    """
    return (end - start).days


@attrs.frozen
class LabPoint:
    """One laboratory event: any of ANC (10^9/L), PLT (10^9/L), Hb (g/L) measured on ``day``."""

    day: date = attrs.field(validator=v.instance_of(date))
    ref: str = attrs.field(validator=v.instance_of(str))
    anc: float | None = attrs.field(default=None, validator=_optional_non_negative)
    plt: float | None = attrs.field(default=None, validator=_optional_non_negative)
    hb: float | None = attrs.field(default=None, validator=_optional_non_negative)


@attrs.frozen
class TransfusionPoint:
    """One transfusion event of ``product`` ('rbc' or 'platelets') given on ``day``."""

    day: date = attrs.field(validator=v.instance_of(date))
    ref: str = attrs.field(validator=v.instance_of(str))
    product: str = attrs.field(validator=v.in_(TRANSFUSION_PRODUCTS))


@attrs.frozen
class InfusionPoint:
    """One MSC infusion: total viable ``cells`` infused on ``day`` to a patient of ``weight_kg``."""

    day: date = attrs.field(validator=v.instance_of(date))
    ref: str = attrs.field(validator=v.instance_of(str))
    cells: float = attrs.field(validator=_positive)
    weight_kg: float = attrs.field(validator=_positive)

    @property
    def cells_per_kg(self) -> float:
        return self.cells / self.weight_kg
