"""SDTM (SDTMIG 3.4) built from each patient's *effective* records as of the export time: voided
records are left out, corrections applied (the Patient aggregate resolves both). Every row's
``--SPID`` is the reference of its source event (``S001#5``), so any value traces to ``pgf history``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgf_events.audit.source import fold, patient_streams
from pgf_events.exports.sdtm import events, findings, special
from pgf_events.exports.sdtm.design import DESIGN, design_rows
from pgf_events.exports.sdtm.meta import SDTM
from pgf_events.exports.sdtm.subject import Subject
from pgf_events.exports.spec import Dataset

DATASETS: dict[str, Dataset] = {**SDTM, **DESIGN}
ORDER = ("TS", "TA", "TE", "TV", "TI", "DM", "SE", "SV", "EX", "PR", "AE", "DS", "MH", "IE", "LB", "VS", "MB",
         "RS", "XG", "DD", "RELREC")
assert set(ORDER) == set(DATASETS)
Rows = dict[str, list[dict[str, Any]]]


def subject_rows(trial: str, patient: Any, params: Any) -> Subject:
    s = Subject(trial, patient, params)
    special.dm(s)
    special.se(s)
    special.sv(s)
    events.ex(s)
    events.pr(s)
    events.ae(s)
    special.ds(s)
    special.mh(s)
    events.ie(s)
    for domain in findings.FINDINGS_DOMAINS:
        findings.findings(s, domain)
    findings.mb(s)
    events.dd(s)
    findings.relrec(s)
    return s


def build_sdtm(app: Any, as_of: datetime | None = None) -> tuple[Rows, list[Subject]]:
    """Every dataset's rows (in ORDER) and the per-subject contexts (ADaM reads them)."""
    rows: Rows = {name: [] for name in ORDER}
    subjects = []
    for _, stream in patient_streams(app, as_of):
        s = subject_rows(app.protocol.trial, fold(stream), app.protocol)
        subjects.append(s)
        for name, part in s.rows.items():
            rows[name].extend(part)
    consents = [r["RFICDTC"] for r in rows["DM"] if r["RFICDTC"]]
    enrolled = sum(1 for r in rows["DM"] if r["ARMCD"])
    cutoff = (as_of or datetime.now(UTC)).date()
    rows.update(design_rows(app.protocol.trial, app.protocol, len(rows["DM"]), enrolled, min(consents, default=None),
                            cutoff))
    return rows, subjects
