"""Writers of one dataset: CDISC Dataset-JSON 1.1 and SAS XPORT v5 (through pyreadstat), and the
measured lengths both they and define.xml declare.

XPT v5 is ASCII: text is made ASCII-safe (:func:`pgf_events.exports.spec.ascii_safe`); Dataset-JSON
keeps the UTF-8 text as recorded. Every file of an export is written to a temporary name and renamed
only when all of them are written (:class:`Files`, as :mod:`pgf_events.audit.files` does for text: an
exclusive temporary name, so a planted symlink is never followed), so a failed export leaves the old files.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from pgf_events import __version__
from pgf_events.domain.errors import ValidationError
from pgf_events.exports.spec import SAS_EPOCH, Dataset, Var, ascii_safe, cell

EXTRA = "export"  # the pyproject extra that brings pyreadstat and pandas
JSON_TYPES = {"text": "string", "integer": "integer", "float": "double", "date": "date", "datetime": "datetime",
              "sasdate": "date"}


class Files:
    """Files written in one folder, each to an exclusive temporary file, all renamed on success."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.pending: list[tuple[str, Path]] = []

    def __enter__(self) -> Files:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, name: str) -> str:
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=self.directory)
        os.close(fd)
        self.pending.append((temp, self.directory / name))
        return temp

    def open(self, name: str) -> IO[str]:
        return open(self.path(name), "w", encoding="utf-8", newline="")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                for temp, _target in self.pending:  # on disk before any is renamed into place
                    fd = os.open(temp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                for temp, target in self.pending:
                    os.replace(temp, target)
        finally:
            for temp, _target in self.pending:
                if os.path.lexists(temp):
                    os.unlink(temp)


def values(ds: Dataset, rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[cell(v, row.get(v.name)) for v in ds.variables] for row in rows]


def lengths(ds: Dataset, table: list[list[Any]]) -> dict[str, int]:
    """Declared length of each variable: 8 for numbers; the longest ASCII-safe value (at least 1) for text."""
    out = {}
    for i, v in enumerate(ds.variables):
        if v.numeric:
            out[v.name] = 8
        else:
            out[v.name] = max([1, *(len(ascii_safe(r[i])) for r in table if r[i] is not None)])
    return out


def dataset_json(ds: Dataset, table: list[list[Any]], *, study_oid: str, mdv_oid: str,
                 now: datetime | None = None, last_modified: datetime | None = None,
                 size: dict[str, int] | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    size = size or lengths(ds, table)
    columns = []
    for i, v in enumerate(ds.variables):
        column: dict[str, Any] = {"itemOID": item_oid(ds, v), "name": v.name, "label": v.label,
                                  "dataType": JSON_TYPES[v.type]}
        if not v.numeric:
            column["length"] = size[v.name]
        if v.type == "sasdate":
            column.update(targetDataType="integer", displayFormat="DATE9.")
        if v.name in ds.keys:
            column["keySequence"] = ds.keys.index(v.name) + 1
        columns.append(column)
        del i
    doc: dict[str, Any] = {
        "datasetJSONCreationDateTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "datasetJSONVersion": "1.1.0", "fileOID": f"{study_oid}.{ds.name}",
        "originator": "pgf-events", "sourceSystem": {"name": "pgf-events", "version": __version__},
        "studyOID": study_oid, "metaDataVersionOID": mdv_oid, "metaDataRef": "define.xml",
        "itemGroupOID": f"IG.{ds.name}", "records": len(table), "name": ds.name, "label": ds.label,
        "columns": columns, "rows": table,
    }
    if last_modified is not None:
        doc["dbLastModifiedDateTime"] = last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return doc


def item_oid(ds: Dataset, v: Var) -> str:
    return f"IT.{ds.name}.{v.name}"


def write_json(files: Files, ds: Dataset, doc: dict[str, Any]) -> None:
    with open(files.path(f"{ds.name.lower()}.json"), "wb") as f:
        f.write(orjson.dumps(doc))  # UTF-8, compact; the same document json.dump writes, several times faster


def need_pyreadstat() -> Any:
    try:
        import pyreadstat  # noqa: PLC0415 - the optional XPT extra
    except ImportError:
        raise ValidationError(
            f"writing SAS XPT needs pyreadstat and pandas: pip install 'pgf-events[{EXTRA}]'") from None
    return pyreadstat


def write_xpt(files: Files, ds: Dataset, table: list[list[Any]]) -> None:
    pyreadstat = need_pyreadstat()
    import pandas as pd  # noqa: PLC0415

    data: dict[str, Any] = {}
    for i, v in enumerate(ds.variables):
        column = [r[i] for r in table]
        if v.type == "sasdate":
            data[v.name] = pd.Series([float("nan") if x is None else float((date.fromisoformat(x) - SAS_EPOCH).days)
                                      for x in column], dtype="float64")
        elif v.numeric:
            data[v.name] = pd.Series([float("nan") if x is None else float(x) for x in column], dtype="float64")
        else:
            data[v.name] = pd.Series(["" if x is None else ascii_safe(str(x)) for x in column], dtype="object")
    frame = pd.DataFrame(data, columns=list(ds.names))
    name = ds.name if len(ds.name) <= 8 else ds.name[:8]
    formats = {v.name: "DATE9" for v in ds.variables if v.type == "sasdate"}
    pyreadstat.write_xport(frame, files.path(f"{ds.name.lower()}.xpt"), file_label=ds.label[:40],
                           column_labels=[v.label for v in ds.variables], table_name=name, file_format_version=5,
                           variable_format=formats or None)
