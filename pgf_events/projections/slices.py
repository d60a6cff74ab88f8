"""The named projections and the part of a patient's derived state each one keeps (one per report
section, :mod:`.sections`).

A projection row is a *slice* of :meth:`PatientState.as_json`: the keys its report needs (the
common header plus its sections). Every state key belongs to at least one slice, so merging a
patient's slices gives back the whole state: ``pgf status`` read from the tables and ``pgf status
--as-of`` derived from the log go through :func:`status_document` alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pgf_events.projections.derive import STATE_KEYS
from pgf_events.projections.sections import SECTIONS

PROJECTIONS: tuple[str, ...] = tuple(SECTIONS)

_COMMON = ("subject", "protocol_version", "cutoff")
SLICE_KEYS: dict[str, tuple[str, ...]] = {name: _COMMON + s.keys for name, s in SECTIONS.items()}


def slice_state(name: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The row data projection ``name`` keeps for one patient (``state`` is ``PatientState.as_json()``)."""
    return {key: state[key] for key in SLICE_KEYS[name]}


def all_slices(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: slice_state(name, state) for name in PROJECTIONS}


def status_document(slices: Mapping[str, Mapping[str, Any]], version: int) -> dict[str, Any]:
    """Merge one patient's slices back into the full derived state, in the state's key order.

    ``version`` (the stream version the state reflects) is kept in a column, not in the slices, so
    that an event which changes nothing a projection shows does not show up as a change.
    """
    merged: dict[str, Any] = {"version": version}
    for name in PROJECTIONS:
        merged.update(slices.get(name, {}))
    return {key: merged[key] for key in STATE_KEYS if key in merged}


def collect_refs(data: Any) -> list[str]:
    """Every event reference named anywhere in a slice (values of ``ref``/``refs`` keys), in log order."""
    found: set[str] = set()
    _walk(data, found)
    return sorted(found, key=_ref_key)


def _walk(data: Any, found: set[str]) -> None:
    kind = type(data)
    if kind is dict or (kind is not list and isinstance(data, Mapping)):
        for key, value in data.items():
            if key == "ref" and isinstance(value, str):
                found.add(value)
            elif key == "refs" and isinstance(value, Iterable) and not isinstance(value, str):
                found.update(str(v) for v in value)
            elif type(value) not in _LEAVES:
                _walk(value, found)
    elif kind is list:
        for item in data:
            if type(item) not in _LEAVES:
                _walk(item, found)


_LEAVES = frozenset({str, int, float, bool, type(None)})  # nothing to look into (skips a call per value)


def _ref_key(ref: str) -> tuple[str, int]:
    subject, _, version = ref.rpartition("#")
    return subject, int(version) if version.isdigit() else 0
