"""Dataset metadata shared by SDTM and ADaM: variables with label, type, origin, codelist; datasets
with class, structure and keys. Every writer (Dataset-JSON, XPT, define.xml) reads only this.

Variables are declared as one compact line each, ``"NAME|Label|type|origin"`` with type one of
``text``, ``integer``, ``float``, ``date``, ``datetime`` (dates are ISO 8601 text in XPT, ``date``
in Dataset-JSON) and ``sasdate`` (an ADaM numeric date: days since 1960-01-01 with DATE9. in XPT,
an ISO date with targetDataType integer in Dataset-JSON) and origin one of the Define-XML origin types (``Collected``, ``Derived``,
``Assigned``, ``Protocol``, ``Predecessor``). Lengths are not declared: they are measured from the
data at write time (the longest value, at least 1; 8 bytes for numbers), as the FDA guide asks.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import attrs

TYPES = ("text", "integer", "float", "date", "datetime", "sasdate")  # sasdate: ADaM numeric date (DATE9.)
SAS_EPOCH = date(1960, 1, 1)
ORIGINS = ("Collected", "Derived", "Assigned", "Protocol", "Predecessor")


@attrs.frozen
class Var:
    name: str
    label: str
    type: str
    origin: str
    codelist: str | None = None  # an OID in CODELISTS

    @property
    def numeric(self) -> bool:
        return self.type in ("integer", "float", "sasdate")


@attrs.frozen
class Dataset:
    name: str
    label: str
    klass: str  # Define-XML def:Class (SPECIAL PURPOSE, FINDINGS, ..., SUBJECT LEVEL ANALYSIS DATASET)
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Var, ...]
    standard: str = "SDTMIG"  # or ADaMIG
    custom: bool = False  # a sponsor-defined domain (documented in the reviewer's guide)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def var(self, name: str) -> Var:
        return next(v for v in self.variables if v.name == name)


def variables(lines: str, codelists: Mapping[str, str] | None = None) -> tuple[Var, ...]:
    """Parse one ``NAME|Label|type|origin`` per line; ``codelists`` maps a variable name to a codelist OID."""
    out = []
    for line in lines.strip().splitlines():
        name, label, kind, origin = (part.strip() for part in line.split("|"))
        assert kind in TYPES and origin in ORIGINS and len(name) <= 8 and len(label) <= 40, line
        out.append(Var(name, label, kind, origin, (codelists or {}).get(name)))
    return tuple(out)


# Codelists: OID -> (name, data type, terms {coded value: decode}, extensible terms not in CDISC CT).
CODELISTS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {}


def codelist(oid: str, name: str, terms: Sequence[str] | Mapping[str, str], extended: Sequence[str] = ()) -> str:
    CODELISTS[oid] = (name, dict(terms) if isinstance(terms, Mapping) else {t: t for t in terms}, tuple(extended))
    return oid


_ASCII = str.maketrans({"µ": "u", "×": "x", "–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"',
                        "≥": ">=", "≤": "<=", "°": " deg"})


def ascii_safe(value: str) -> str:
    """The ASCII text SAS XPT v5 requires: known symbols spelled out, accents dropped, anything else ``?``."""
    return value if value.isascii() else _fold(value)


@functools.lru_cache(maxsize=4096)
def _fold(value: str) -> str:
    # Degrees Celsius/Fahrenheit are "C"/"F" in CDISC's unit terminology; any other degree is spelled out.
    text = value.replace("°C", "C").replace("°F", "F").translate(_ASCII)
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c if ord(c) < 128 else ("" if unicodedata.combining(c) else "?") for c in folded)


def cell(var: Var, value: Any) -> Any:
    """A value as the dataset carries it: None stays None, numbers stay numbers, the rest is text."""
    if value is None or value == "":
        return None
    if var.type == "sasdate":
        return value.isoformat() if isinstance(value, date) else str(value)
    if var.type == "integer":
        return int(value)
    if var.type == "float":
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 1e15 else number
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
