"""How times and values are written out: one place for the JSON and ISO 8601 conventions.

- A recorded or clinical *time* is ISO 8601 in UTC with a ``Z`` (``2025-03-04T09:30:00Z``).
- A *date* is ``YYYY-MM-DD``.
- Tuples and sets become JSON lists.
"""

from __future__ import annotations

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
