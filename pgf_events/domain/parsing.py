"""Turn what a person typed (CLI strings or JSON values) into clean Python values.

Every function raises :class:`ValidationError` with a sentence naming the field and the bad
value, so the CLI and ``pgf import`` report the same message for the same mistake.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from pgf_events.domain.errors import ValidationError

EARLIEST_DATE = date(1900, 1, 1)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
# What free text may never hold (clinical-rules.md, "Rules at entry"; issue 13): C0 and C1 control
# characters (newline and tab included: one value is one line in every listing), the Unicode line
# and paragraph separators, bidirectional embeddings/overrides/isolates (they reorder what a
# reviewer sees), non-characters (U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF: not allowed in XML) and
# lone surrogates (not encodable as UTF-8; how invalid UTF-8 in a command-line argument arrives).
_FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("\x00-\x1f\x7f-\x9f", "a control character"),
    ("\u2028\u2029", "a line or paragraph separator"),
    ("\u202a-\u202e\u2066-\u2069", "a bidirectional override"),
    ("\ud800-\udfff", "a lone surrogate (invalid UTF-8)"),
    ("\ufdd0-\ufdef" + "".join(chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)),
     "a Unicode non-character"),
)


@functools.cache
def _forbidden() -> re.Pattern[str]:
    """Every character of :data:`_FORBIDDEN` (compiled on first use: its big character class costs a
    few milliseconds, which a command that checks or escapes no text, such as ``pgf status --json``,
    does not pay at start-up)."""
    return re.compile("[" + "".join(chars for chars, _ in _FORBIDDEN) + "]")


@functools.cache
def _what() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(f"[{chars}]"), what) for chars, what in _FORBIDDEN]

MAX_NUMBER_CHARS = 40  # "6.1e8", "0.000123456789...": no real value needs more
MAX_MAGNITUDE = 1e15  # above every range any field allows; keeps float(int) from overflowing


def label(name: str) -> str:
    """The option a user typed for a field name: ``weight_kg`` -> ``--weight-kg``."""
    return "--" + name.replace("_", "-")


def parse_date(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
        raise ValidationError(f"{label(name)} must be a date like 2025-03-01, not {_show(value)}")
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{label(name)} {value.strip()} is not a real calendar date") from None
    if parsed < EARLIEST_DATE:
        raise ValidationError(f"{label(name)} {parsed} is before {EARLIEST_DATE}")
    return parsed


def parse_datetime(value: Any, name: str) -> datetime:
    """A date or date-time; a time without an offset is UTC. Returned timezone-aware in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        d = parse_date(value, name)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    if not isinstance(value, str) or not _DATETIME_RE.match(value.strip()):
        raise ValidationError(
            f"{label(name)} must be a date or date-time like 2025-03-01T14:30, not {_show(value)}"
        )
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{label(name)} {value.strip()} is not a real date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.date() < EARLIEST_DATE:
        raise ValidationError(f"{label(name)} {parsed.date()} is before {EARLIEST_DATE}")
    return parsed.astimezone(UTC)


def parse_number(value: Any, name: str, unit: str = "") -> float:
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"{label(name)} must be a number, not {_show(value)}")
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:
            raise ValidationError(f"{label(name)} is too large a number ({_show(value)})")
        number = float(value)
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        if len(value.strip()) > MAX_NUMBER_CHARS:
            raise ValidationError(f"{label(name)} must be a number of at most {MAX_NUMBER_CHARS} characters")
        try:
            number = float(value.strip())
        except ValueError:
            raise ValidationError(f"{label(name)} must be a number, not {_show(value)}") from None
    else:
        raise ValidationError(f"{label(name)} must be a number, not {_show(value)}")
    if not math.isfinite(number):
        raise ValidationError(f"{label(name)} must be a finite number, not {_show(value)}")
    if abs(number) > MAX_MAGNITUDE:
        raise ValidationError(f"{label(name)} is too large a number ({_show(value)})")
    return number


def parse_int(value: Any, name: str) -> int:
    number = parse_number(value, name)
    if number != int(number):
        raise ValidationError(f"{label(name)} must be a whole number, not {_show(value)}")
    return int(number)


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "y", "true", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("no", "n", "false", "0"):
        return False
    raise ValidationError(f"{label(name)} must be yes or no, not {_show(value)}")


def parse_text(value: Any, name: str, max_length: int = 200) -> str:
    """Free text: one line of printable Unicode, NFC-normalised, at most ``max_length`` characters."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValidationError(f"{label(name)} must be text, not {_show(value)}")
    text = str(value)
    check_clean(text, name)
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise ValidationError(f"{label(name)} must not be empty")
    if len(text) > max_length:
        raise ValidationError(f"{label(name)} is longer than {max_length} characters")
    return text


def check_clean(text: str, name: str) -> None:
    """Refuse text holding a character no record may hold, naming the field, the kind and the position."""
    bad = _forbidden().search(text)
    if bad is None:
        return
    what = next(w for pattern, w in _what() if pattern.match(bad.group()))
    raise ValidationError(
        f"{label(name)} contains {what} (U+{ord(bad.group()):04X} at position {bad.start() + 1}); "
        "free text must be one line of printable characters"
    )


def printable(text: str) -> str:
    """``text`` with every character :func:`check_clean` refuses shown as an escape (for output of old data)."""
    return _forbidden().sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def parse_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        normalised = value.strip().lower()
        for choice in choices:
            if choice.lower() == normalised:
                return choice
    raise ValidationError(f"{label(name)} must be one of {', '.join(choices)}, not {_show(value)}")


def check_in_range(number: float, name: str, low: float, high: float, unit: str) -> None:
    if not low <= number <= high:
        unit_text = f" {unit}" if unit else ""
        raise ValidationError(
            f"{label(name)} {_fmt(number)}{unit_text} is out of range {_fmt(low)}–{_fmt(high)}{unit_text}"
        )


@functools.lru_cache(maxsize=64)  # asked once per command with the same ``now`` for a whole batch
def latest_valid_date(now: datetime) -> date:
    """The latest clinical date that is not in the future anywhere on Earth (UTC+14)."""
    return (now.astimezone(UTC) + timedelta(hours=14)).date()


def _fmt(number: float) -> str:
    return f"{number:g}"


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if not isinstance(value, str) else f"'{printable(value)}'"
    return text if len(text) <= 40 else text[:37] + "...'"


def site_local(value: Any, zone: tzinfo) -> Any:
    """A date-time typed without an offset is local time at the site (v2): give it the site's
    offset at that moment. Anything else (a date, a time with an offset, not text) is left as is."""
    if not isinstance(value, str) or not _DATETIME_RE.match(value.strip()) or _HAS_OFFSET.search(value.strip()):
        return value
    try:
        local = datetime.fromisoformat(value.strip().replace(" ", "T")).replace(tzinfo=zone)
    except ValueError:
        return value  # parse_datetime names the error
    return local.isoformat()


_HAS_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def parse_as_of(value: Any) -> datetime:
    """``--as-of``: a date-time (UTC unless an offset is given), or a date meaning the end of that UTC day."""
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        d = parse_date(value, "as_of")
        return datetime(d.year, d.month, d.day, 23, 59, 59, 999999, tzinfo=UTC)
    return parse_datetime(value, "as_of")
