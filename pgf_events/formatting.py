"""How times and values are written out: one place for the JSON and ISO 8601 conventions.

- A recorded or clinical *time* is ISO 8601 in UTC with a ``Z`` (``2025-03-04T09:30:00Z``).
- A *date* is ``YYYY-MM-DD``.
- Tuples and sets become JSON lists.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any


def iso(value: date | datetime | None) -> str | None:
    """A date as ``YYYY-MM-DD``, a time as ISO 8601 with ``Z`` for UTC (as stored: no conversion)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def utc(value: datetime) -> str:
    """A recorded time as ISO 8601 UTC with a Z (microseconds kept: it is an audit timestamp)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_default(value: Any) -> Any:
    """``default=`` for json/orjson dumps: dates and times as :func:`iso`, tuples and sets as lists."""
    if isinstance(value, (datetime, date)):
        return iso(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def jsonable(value: Any) -> Any:
    """A record field value as JSON holds it (dates as ISO text, tuples as lists)."""
    if isinstance(value, (datetime, date)):
        return iso(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def to_json(obj: Any) -> str:
    """One JSON document as ``--json`` prints it and ``pgf serve`` sends it (indented, UTF-8 text)."""
    return json.dumps(obj, default=json_default, ensure_ascii=False, indent=2)


def show(value: Any) -> str:
    """A value as the history and the audit reports write it in a sentence (``old -> new``)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%MZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)
