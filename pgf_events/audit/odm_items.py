"""Stored JSON to ODM item text, for :mod:`pgf_events.audit.odm_rows`: a record's ``_data_`` turned
into its ItemData (an Insert each) exactly as :class:`~pgf_events.audit.odm_subjects.Transactions`
writes the decoded record, or :class:`Slow` when the JSON holds something the decoded path should say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pgf_events.audit.odm_meta import _attr, _group, _text, decimal_text
from pgf_events.audit.odm_subjects import _insert_start
from pgf_events.audit.source import utc
from pgf_events.domain import values as vo
from pgf_events.domain.entries import _restore_plan
from pgf_events.domain.kinds import EVENT_KINDS, KINDS
from pgf_events.domain.patient import Patient
from pgf_events.topics import STORED_TOPICS


class Slow(Exception):  # noqa: N818 - not an error: the event is written by the decoded path
    """A value the rows cannot turn into text exactly as the decoded record would be."""


# ------------------------------------------------------------------------------------------ values

_STRINGS: dict[str, str] = {}  # text value -> its Value attribute (codes, units, sources repeat)
_DATES: dict[str, str] = {}  # stored date -> as the record's date writes it
_KEEP = 50_000  # entries each of these caches holds at most


def _string(value: str) -> str:
    found = _STRINGS.get(value)
    if found is None:
        found = _attr(value)
        if len(_STRINGS) < _KEEP:
            _STRINGS[value] = found
    return found


_FLOATS: dict[float, str] = {}  # a float -> decimal_text() of it (0.0 and -0.0, equal keys, are left out)


def _float(value: float) -> str:
    text = decimal_text(value)
    if value and len(_FLOATS) < _KEEP:
        _FLOATS[value] = text
    return text


def _typed(value: dict[str, Any]) -> str:
    """A ``{"_type_", "_data_"}`` value (a date or a time) as the decoded value's text."""
    name, data = value.get("_type_"), value.get("_data_")
    if len(value) != 2 or type(data) is not str:
        raise Slow
    if name == "date_iso":
        found = _DATES.get(data)
        if found is None:
            found = date.fromisoformat(data).isoformat()
            if len(_DATES) < _KEEP:
                _DATES[data] = found
        return found
    if name == "datetime_iso":
        return utc(datetime.fromisoformat(data))
    raise Slow


def _value(value: Any) -> str:
    """What ``odm_subjects._value`` writes for the value this stored JSON value decodes to (not None)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is float:
        return _FLOATS.get(value) or _float(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is dict:
        return _typed(value)
    raise Slow


# ------------------------------------------------------------------------------------------ records

_PLAIN, _KEYED, _CHOSEN = 0, 1, 2  # a field as one item; a dict spread over items; a list of choices


class RecordRows:
    """How one record kind's stored ``_data_`` becomes its ItemData (an Insert each): the fields in
    ``flatten()``'s order, with the defaults ``restore()`` gives a field the stored JSON lacks."""

    def __init__(self, kind: str, record: type[vo.Record]):
        self.kind = kind
        self.transcoding = f"pgf.{kind}"
        g = _group(kind)
        fields: list[tuple[str, Any, Callable[[], Any] | None, int, Any]] = []
        for name, default, factory in _restore_plan(record):
            if name == "criterion":
                parts = tuple((_insert_start(f"IT.{g}.CRITERION_{c}"), c) for c in vo.TYPED_CRITERIA)
                fields.append((name, default, factory, _KEYED, parts))
            elif name == "organ":
                parts = tuple((_insert_start(f"IT.{g}.ORGAN_{o.upper()}"), o) for o in vo.CHRONIC_ORGANS)
                fields.append((name, default, factory, _KEYED, parts))
            elif name == "serious":
                parts = tuple((_insert_start(f"IT.{g}.SERIOUS_{c.upper().replace('-', '_')}"), c)
                              for c in vo.SERIOUSNESS)
                fields.append((name, default, factory, _CHOSEN, parts))
            else:
                fields.append((name, default, factory, _PLAIN, _insert_start(f"IT.{g}.{name.upper()}")))
        self.fields = tuple(fields)
        # The stored field names (in order) -> each field's ItemData start, when every field is one item.
        self.layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
        if all(shape == _PLAIN for _, _, _, shape, _ in fields):
            self.layouts[tuple(f[0] for f in fields)] = tuple(f[4] for f in fields)

    def items(self, data: dict[str, Any], tail: str) -> str:
        """The ItemData of every value the record holds, each ending with ``tail`` (its AuditRecord and end
        tag); :class:`Slow` if unsure. A record stored with every field of its kind in order (what this
        program writes) is read by position; any other goes field by field, defaults as ``restore()``."""
        starts = self.layouts.get(tuple(data))
        if starts is None:
            return "".join([f"{start}{value}{tail}" for start, value in self.values(data)])
        out: list[str] = []
        strings, floats = _STRINGS, _FLOATS
        for start, value in zip(starts, data.values(), strict=True):
            kind = type(value)
            if kind is float:
                text = floats.get(value)
                if text is None:
                    text = _float(value)
            elif kind is str:
                text = strings.get(value)
                if text is None:
                    text = _string(value)
            elif value is None:
                continue
            elif kind is int:
                text = str(value)
            elif kind is dict:
                text = _typed(value)
            else:
                text = _value(value)
            out += (start, text, tail)
        return "".join(out)

    def values(self, data: dict[str, Any]) -> list[tuple[str, str]]:
        """(ItemData start, Value text) of every value the record holds, field by field."""
        out = []
        for name, default, factory, shape, start in self.fields:
            value = data.get(name, default) if factory is None or name in data else factory()
            if shape == _PLAIN:
                if value is not None:
                    out.append((start, _value(value)))
            elif shape == _KEYED:
                if type(value) is not dict or "_type_" in value:
                    raise Slow
                for part_start, key in start:
                    part = value.get(key)
                    if part is not None:
                        out.append((part_start, _value(part)))
            else:
                if value is not None and type(value) is not list:
                    raise Slow
                if value:  # flatten(): each choice's item is None (left out) when nothing was chosen
                    for part_start, choice in start:
                        out.append((part_start, "true" if choice in value else "false"))
        return out


_RECORDED: dict[str, RecordRows] = {}  # a Recorded event's stored topic -> its kind's rows


def recorded() -> dict[str, RecordRows]:
    if not _RECORDED:
        kinds = {}
        for topic, cls in STORED_TOPICS.items():
            if (isinstance(cls, type) and issubclass(cls, Patient.Recorded) and cls in EVENT_KINDS
                    and getattr(cls, "class_version", 1) == 1):
                kind = EVENT_KINDS[cls]
                if kind not in kinds:
                    kinds[kind] = RecordRows(kind, KINDS[kind].record)
                _RECORDED[topic] = kinds[kind]
    return _RECORDED


# ------------------------------------------------------------------------------------------ times

# A UTC time as isoformat writes it (microseconds only when not zero): ``utc()`` of it is the same
# text with a Z. Anything else is parsed and written by ``utc()``.
_STAMP = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
                    r"(?:\.(?!000000)\d{6})?\+00:00")


def stamp_text(text: str) -> str:
    if _STAMP.fullmatch(text):
        return text[:-6] + "Z"
    return utc(datetime.fromisoformat(text))


_SOURCES: dict[str, str] = {}


def source_text(source: str) -> str:
    found = _SOURCES.get(source)
    if found is None:
        found = _text(f" | {source}")
        if len(_SOURCES) < _KEEP:
            _SOURCES[source] = found
    return found

