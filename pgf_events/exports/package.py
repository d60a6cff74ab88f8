"""Writes a set of datasets as a submission package folder: ``<name>.json`` (Dataset-JSON 1.1),
``<name>.xpt`` (SAS XPORT v5) and ``define.xml`` describing them, all renamed into place together."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgf_events.exports.define import define_xml
from pgf_events.exports.formats import Files, dataset_json, lengths, need_pyreadstat, values, write_json, write_xpt
from pgf_events.exports.spec import Dataset


def write_package(directory: Path, datasets: Mapping[str, Dataset], rows: Mapping[str, list[dict[str, Any]]], *,
                  trial: str, standard: str, as_of: datetime | None = None) -> dict[str, int]:
    """Write every dataset (even an empty one) and define.xml; returns the row count per dataset."""
    need_pyreadstat()  # before anything is written: a missing extra writes nothing
    now = datetime.now(UTC)
    mdv = f"MDV.{trial}.{standard}"
    measured: dict[str, dict[str, int]] = {}
    with Files(directory) as files:
        for name, ds in datasets.items():
            table = values(ds, rows.get(name, []))
            measured[name] = lengths(ds, table)
            write_json(files, ds, dataset_json(ds, table, study_oid=f"ST.{trial}", mdv_oid=mdv, now=now,
                                               last_modified=as_of, size=measured[name]))
            write_xpt(files, ds, table)
        with files.open("define.xml") as f:
            f.write(define_xml(datasets, measured, trial=trial, standard=standard, now=now))
    return {name: len(rows.get(name, [])) for name in datasets}
