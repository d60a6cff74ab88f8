"""A report's cohort summary for people: one wrapped line per metric, rates as k/n = % (95% CI),
cells as ×10^6/kg, intensities as %, acute GVHD grades as I–IV; listings are returned for tables."""

from __future__ import annotations

import textwrap
from collections.abc import Collection
from typing import Any

from pgf_events.cli._human import ROMAN, plain

LABELS = {
    "acute_2_4": "acute grade II–IV", "acute_3_4": "acute grade III–IV",
    "acute_2_4_cumulative_incidence": "acute grade II–IV cumulative incidence",
    "acute_max_grade": "acute max grade", "os_1y": "OS at 1 year", "dfs_1y": "DFS at 1 year",
    "relapse_1y": "relapse at 1 year", "CR_or_PR": "CR or PR",
}
WORDS = {"msc": "MSC", "d1": "D1", "rbc": "RBC", "anc": "ANC", "plt": "PLT", "os": "OS", "dfs": "DFS", "ae": "AE"}


def label(key: str) -> str:
    """``platelet_response.CR_or_PR`` -> ``platelet response, CR or PR``."""
    return ", ".join(LABELS.get(part) or " ".join(WORDS.get(w, w) for w in part.split("_")) for part in key.split("."))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _scale(key: str) -> Any:
    if key.endswith("cells_per_kg"):
        return lambda v: f"{v / 1e6:.2f} ×10^6/kg"
    if key.endswith("relative_dose_intensity"):
        return lambda v: f"{v:.0%}"
    return lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)


def _format(key: str, value: Any) -> str | None:
    """One line for a rate, a survival/incidence estimate or a distribution; None if not a leaf."""
    leaf = key.rsplit(".", 1)[-1]
    if not isinstance(value, dict):
        if isinstance(value, float):
            return _scale(leaf)(value)
        return plain(value)
    if {"k", "n", "estimate"} <= value.keys():
        text = f"{value['k']}/{value['n']} = {_pct(value['estimate'])}"
        if value["ci_low"] is not None:
            text += f" (95% CI {_pct(value['ci_low'])}–{_pct(value['ci_high'])})"
        extra = {k: v for k, v in value.items() if k not in ("k", "n", "estimate", "ci_low", "ci_high")}
        return text + "".join(f"; {label(k)} {plain(v) or '-'}" for k, v in extra.items())
    if {"estimate", "at_risk", "horizon_days"} <= value.keys():
        text = f"{_pct(value['estimate'])} at day {value['horizon_days']}"
        if value["ci_low"] is not None:
            text += f" (95% CI {_pct(value['ci_low'])}–{_pct(value['ci_high'])})"
        text += f"; at risk {value['at_risk']}, events {value['events']}"
        if "competing_events" in value:
            text += f", competing deaths {value['competing_events']}"
        return text + f", n {value['n']}" + ("; delayed entry" if value.get("delayed_entry") else "")
    if {"mean", "median", "min", "max"} <= value.keys():
        if not value["n"]:
            return "-"
        f = _scale(leaf)
        return f"mean {f(value['mean'])}, median {f(value['median'])}, range {f(value['min'])}–{f(value['max'])} " \
               f"(n {value['n']})"
    if all(not isinstance(v, (dict, list)) for v in value.values()):
        names = (lambda k: ROMAN.get(int(k), k) if k.isdigit() else plain(k)) if leaf == "acute_max_grade" else plain
        return ", ".join(f"{names(k)} {plain(v)}" for k, v in value.items()) or "-"
    return None


def _flatten(summary: dict[str, Any], listings: Collection[str], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, list) and (key in listings or (value and isinstance(value[0], dict))):
            out.append((name, value))
            continue
        line = _format(name, value)
        if line is None:
            out.extend(_flatten(value, listings, f"{name}."))
        else:
            out.append((name, line))
    return out


def summary_lines(summary: dict[str, Any], listings: Collection[str],
                  width: int | None = None) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """(wrapped ``label: value`` lines, [(listing key, items)])."""
    from pgf_events.cli._table import width as terminal_width  # noqa: PLC0415

    width = width or terminal_width()
    lines: list[str] = []
    found: list[tuple[str, list[Any]]] = []
    for key, value in _flatten(summary, listings):
        if isinstance(value, list):
            found.append((key, value))
        elif key.rsplit(".", 1)[-1] != "day_labels":
            lines.extend(textwrap.wrap(f"{label(key)}: {value}", width, subsequent_indent="    ",
                                       break_on_hyphens=False) or [""])
    return lines, found
