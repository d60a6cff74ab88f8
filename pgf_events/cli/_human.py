"""Numbers for people: cells as ×10^6/kg, intensities as %, acute GVHD grades as I–IV, events as words.

Only the human tables and summaries use this; JSON, CSV, TSV and JSON Lines keep the machine values
(``12000000.0``, ``0.97``, ``2``, ``1``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pgf_events.domain.parsing import printable

HASH = re.compile(r"[0-9a-f]{40,}")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?Z")
SNAKE = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")
ROMAN = {0: "0", 1: "I", 2: "II", 3: "III", 4: "IV"}
ENDPOINT_SHORT = {"neutrophil_engraftment": "anc", "rbc_recovery": "rbc", "platelet_response": "plt"}


def cells_per_kg(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}\u00a0×10^6/kg"  # no break before the unit


def percent(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def grade(value: int | None) -> str:
    """An acute GVHD grade (MAGIC/Glucksberg I–IV); 0 = no acute GVHD."""
    return "-" if value is None else ROMAN.get(value, str(value))


def event(value: int | None, word: str) -> str:
    return "" if value is None else (word if value == 1 else "censored" if value == 0 else str(value))


# Column key -> how a person reads it.
FORMATS: dict[str, Any] = {
    "cumulative_cells_per_kg": lambda v: "-" if v is None else f"{v / 1e6:.2f}",  # the header says ×10^6/kg
    "cells_per_kg": cells_per_kg,
    "relative_dose_intensity": percent,
    "acute_max_grade": grade,
    "os_event": lambda v: event(v, "death"),
    "dfs_event": lambda v: event(v, "relapse/death"),
}


def human(key: str, value: Any) -> str:
    """One table cell as a person reads it."""
    if key == "window" and isinstance(value, str) and "/" in value:  # 2025-03-16/2025-03-20 -> 03-16–03-20
        low, high = value.split("/")
        return f"{low[5:]}–{high[5:]}"
    if key in FORMATS and (value is None or isinstance(value, (int, float))) and not isinstance(value, bool):
        return FORMATS[key](value)
    return plain(value)


def plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, dict):  # reasons: "platelet_response=died" -> "plt: died"
        return "; ".join(f"{ENDPOINT_SHORT.get(k, plain(k))}: {plain(v).replace('_', ' ')}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, str) and HASH.fullmatch(value):  # a SHA-256 for people: its first 12 digits
        return value[:12] + "…"
    if isinstance(value, str) and ISO_TIME.fullmatch(value):  # 2024-04-06T12:54:00Z -> 2024-04-06 12:54Z
        return f"{value[:10]} {value[11:16]}Z"
    if isinstance(value, str) and SNAKE.fullmatch(value):  # a coded value: last_known_alive -> last known alive
        return value.replace("_", " ")
    if isinstance(value, str):  # text that could fake a line or reorder one is escaped
        return printable(value)
    return str(value)


def key_label(key: str) -> str:
    """A summary key for people: ``serious_adverse_events`` -> ``serious adverse events``."""
    return key.replace("_1y", " 1-year").replace("_", " ")
