"""What ``pgf record`` prints: one line with the reference and what was stored, from the value
class's field metadata (units, entry units), then any change it made to the patient's status.

``S001#6 lab 2025-03-01: ANC 0.4, PLT 18, Hb 72 g/L (entered 7.2 g/dL)``
``  -> neutrophil engraftment reached 2025-03-04 (MSC D8, day +53)``
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs
import click

from pgf_events.domain.values import COUNT_UNIT

SHORT = {"hb": "Hb", "anc": "ANC", "plt": "PLT", "wbc": "WBC", "kps": "KPS"}  # as written in the clinic


def field_label(name: str, unit: str | None = None) -> str:
    """``anc`` -> ``ANC``; ``weight_kg`` (unit kg) -> ``weight``: the unit follows the value instead."""
    if name in SHORT:
        return SHORT[name]
    words = name.split("_")
    if unit and len(words) > 1 and words[-1] == unit:
        words = words[:-1]
    return " ".join(words)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1e5:  # 6.1e7 cells -> 6.1×10^7
            mantissa, exponent = f"{value:.3g}".split("e") if "e" in f"{value:.3g}" else (f"{value:.3g}", "0")
            return f"{mantissa}×10^{int(exponent)}"
        return f"{value:g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") + ("Z" if value.utcoffset() is not None else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items())
    return str(value)


def stored_line(ref: str, kind: str, record: Any, entered: dict[str, Any]) -> str:
    """``REF KIND DATE: field value unit, ...`` for the fields that hold a value (the date first)."""
    date_field = getattr(record, "DATE_FIELD", "date")
    day = getattr(record, date_field, None)
    parts = []
    units_entered = {option.after: name for name, option in type(record).INPUT_OPTIONS.items() if option.after}
    for a in attrs.fields(type(record)):
        value = getattr(record, a.name)
        if a.name == date_field or value is None or value == () or value == [] or value is False:
            continue
        unit = a.metadata.get("unit")
        text = f"{field_label(a.name, unit)} {_value(value)}"
        if unit and unit != COUNT_UNIT:  # counts are 10^9/L throughout; other units are said
            text += f" {unit}"
        unit_option = units_entered.get(a.name)
        if unit_option and entered.get(unit_option) and entered[unit_option] != unit and a.name in entered:
            text += f" ({_value(entered[a.name])} {entered[unit_option]})"
        parts.append(text)
    head = f"{ref} {kind}" + (f" {_value(day)}" if isinstance(day, date) else "")
    return head + (": " + ", ".join(parts) if parts else "")


def echo_record(app: Any, result: Any, kind: str, entered: dict[str, Any]) -> None:
    """Print the stored line and, indented, each status change the record caused."""
    from pgf_events.projections.changes import stored_and_changes  # noqa: PLC0415 - only when echoing

    record, changes = stored_and_changes(app, result.subject, result.version)
    click.echo(stored_line(result.ref, kind, record, entered) if record is not None else result.ref)
    for line in changes:
        click.echo(f"  -> {line}")
