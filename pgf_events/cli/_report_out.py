"""The machine forms of a report: the per-patient rows, the cohort summary and every listing as tables.

``pgf report NAME --csv`` prints the rows; ``--listing summary|saes|...`` prints one other table;
``-o DIR`` writes them all, one file each (``DIR/NAME.csv``, ``DIR/NAME-summary.csv``,
``DIR/NAME-saes.csv``, ...). Values stay machine values (ISO dates, fractions, integer grades).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pgf_events.domain.errors import PgfError

HEADERS: dict[str, str] = {}
EXTENSIONS = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl"}


def tables(name: str, doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``rows``, ``summary`` (one line per metric) and each listing of the summary (SAEs, deviations...)."""
    out: dict[str, list[dict[str, Any]]] = {"rows": doc["rows"], "summary": []}
    _walk(doc["summary"], "", out)
    return out


def _walk(summary: dict[str, Any], prefix: str, out: dict[str, list[dict[str, Any]]]) -> None:
    for key, value in summary.items():
        metric = f"{prefix}{key}"
        if isinstance(value, list) and (not value or isinstance(value[0], dict)):
            out[metric.replace(".", "_")] = [flat_item(item) for item in value]
        elif isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values()):
            leaves = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
            if leaves:
                out["summary"].append({"metric": metric, **leaves})
            _walk({k: v for k, v in value.items() if isinstance(v, (dict, list))}, f"{metric}.", out)
        elif isinstance(value, dict):
            out["summary"].append({"metric": metric, **value})
        else:
            out["summary"].append({"metric": metric, "value": value})


def flat_item(item: dict[str, Any]) -> dict[str, Any]:
    """A listing line for CSV: reporting clocks become ``<clock>_due``, ``_reported`` and ``_met`` columns."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        if key == "clocks":
            for clock in value or []:
                for field in ("due", "reported", "met"):
                    flat[f"{clock['name']}_{field}"] = clock.get(field)
        else:
            flat[key] = value
    return flat


def write_all(name: str, parts: dict[str, list[dict[str, Any]]], fmt: str, folder: str) -> list[Path]:
    """One file per table; refuses to write anything if the folder cannot be made."""
    from pgf_events.cli._output import render  # noqa: PLC0415

    directory = Path(folder)
    if folder == "-":
        raise PgfError("-o needs a folder, not '-' (to print one table, use --listing)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PgfError(f"cannot create the folder {folder}: {e.strerror}") from None
    written = []
    for part, rows in parts.items():
        path = directory / (f"{name}.{EXTENSIONS[fmt]}" if part == "rows" else f"{name}-{part}.{EXTENSIONS[fmt]}")
        with path.open("w", encoding="utf-8", newline="") as f, _stdout(f):
            render(rows, fmt)
        written.append(path)
    return written


class _stdout:
    """Send click.echo (and the csv writer on sys.stdout) to a file for the duration."""

    def __init__(self, f: Any):
        self.f = f

    def __enter__(self) -> None:
        import sys  # noqa: PLC0415

        self.saved = sys.stdout
        sys.stdout = self.f

    def __exit__(self, *exc: object) -> None:
        import sys  # noqa: PLC0415

        sys.stdout = self.saved


def empty_as_of_note(as_of: str) -> str:
    return (f"note: nothing had been recorded by {as_of}. --as-of is when the database learnt a fact (recording "
            "time), not the clinical date; a cohort entered retrospectively (like the demo, recorded today) is "
            "empty before its recording. For a clinical data cut-off use --cutoff DATE.")


PLOTS = {"survival": "plot_survival", "endpoints": "plot_incidence", "dosing": "plot_swimmer",
         "eligibility": "plot_consort"}


def check_plot(name: str, path: str) -> Callable[..., None]:
    """The report's figure function, after checking the file can be written (before any work)."""
    from pgf_events.projections.plot_files import check_path  # noqa: PLC0415

    if name not in PLOTS:
        raise click.UsageError(f"--plot draws the {', '.join(PLOTS)} reports; {name} has no figure")
    check_path(path)
    from pgf_events.projections import cohort_plots  # noqa: PLC0415

    return getattr(cohort_plots, PLOTS[name])  # type: ignore[no-any-return]
