"""Findings of one subject generated from the registry (:data:`pgf_events.domain.kinds.KINDS`): every
kind's :class:`~pgf_events.domain.kinds.Finding` is one test of its findings dataset (LB, VS, RS, XG),
plus MB (organisms of infection episodes), RS disease status (relapse, contacts), XG chronic organ
scores, and RELREC (an infection's AE record and its MB record; the DS death record and DD).

LB: ``--ORRES``/``--ORRESU`` are the value and unit as entered (a g/dL haemoglobin stays g/dL when the
record kept its as-entered text), ``--STRESN``/``--STRESU`` the standard value the engine stores;
reference ranges in both units, ``LBNRIND`` from the standard value, ``--LOBXFL`` on the last
value of each test on or before the first infusion (SDTMIG 3.4's baseline flag).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.kinds import KINDS, Finding, Kind
from pgf_events.domain.vocabulary import BILIRUBIN_UMOL_PER_MG_DL, HB_G_PER_L_PER_G_PER_DL
from pgf_events.exports.sdtm.subject import Subject
from pgf_events.exports.spec import ascii_safe

FACTORS = {("g/dL", "g/L"): HB_G_PER_L_PER_G_PER_DL, ("mg/dL", "umol/L"): BILIRUBIN_UMOL_PER_MG_DL}
_ENTERED = re.compile(r"^\s*(?P<value>[-+]?\d+(?:\.\d+)?)\s*(?P<unit>\S.*)?$")
FINDINGS_DOMAINS = ("LB", "VS", "RS", "XG")


def number(value: float) -> str:
    """A number as text without exponent (ODM and SDTM character results alike)."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _result(value: Any) -> tuple[str, float | None]:
    if isinstance(value, bool):
        return ("Y" if value else "N"), None
    return number(value), float(value)


def as_entered(record: vo.Record, f: Finding, value: Any) -> tuple[str, str]:
    """(ORRES, ORRESU): the as-entered text when the record kept it, else the stored value."""
    entered = getattr(record, f"{f.field}_as_entered", None)
    match = _ENTERED.match(entered) if isinstance(entered, str) else None
    if match:
        unit = ascii_safe(match["unit"] or f.unit).strip()
        return match["value"], unit
    return _result(value)[0], f.unit


def _kinds(domain: str) -> Iterator[Kind]:
    return (k for k in KINDS.values() if domain in k.sdtm and any(f.domain == domain for f in k.findings))


def findings(s: Subject, domain: str) -> None:
    d = domain
    tested: list[tuple[Any, dict[str, Any]]] = []
    for kind in _kinds(domain):
        records = sorted(s.p.active(kind.record), key=lambda vr: (vr[1].clinical_date, vr[0]))
        for version, record in records:
            day = record.clinical_date
            for f in kind.findings:
                value = getattr(record, f.field)
                if f.domain != d or value is None or (isinstance(value, bool) and getattr(record, "chronic", False)):
                    continue
                stresc, stresn = _result(value)
                orres, orresu = as_entered(record, f, value)
                row = {f"{d}SPID": s.ref(version), f"{d}TESTCD": f.code, f"{d}TEST": f.test,
                       f"{d}CAT": f.category or None, f"{d}ORRES": orres, f"{d}STRESC": stresc, f"{d}STRESN": stresn}
                if f.unit:
                    row.update({f"{d}ORRESU": orresu, f"{d}STRESU": f.unit})
                if d == "LB":
                    row.update(_ranges(s, f, orresu, stresn))
                if d == "VS":
                    row["VSTPT"] = getattr(record, "timepoint", None)  # vitals around an infusion
                tested.append(((day, version), {**row, **s.visit(day), f"{d}DTC": day, f"{d}DY": s.dy(day)}))
    if d == "RS":
        tested += _disease_status(s)
    if d == "XG":
        tested += _organ_scores(s)
    baseline = _last_before_exposure(s, d, [row for _, row in tested])
    for _, row in sorted(tested, key=lambda t: t[0]):
        if d in ("LB", "VS"):
            row[f"{d}LOBXFL"] = "Y" if id(row) in baseline else None
        s.add(d, **row)


def _ranges(s: Subject, f: Finding, orresu: str, stresn: float | None) -> dict[str, Any]:
    normal = f.range_for(s.p.registration.sex)
    if normal is None or stresn is None:
        return {}
    low, high = normal
    factor = FACTORS.get((orresu, f.unit), 1.0)
    indicator = "LOW" if stresn < low else "HIGH" if stresn > high else "NORMAL"
    return {"LBORNRLO": number(low / factor), "LBORNRHI": number(high / factor), "LBSTNRLO": low,
            "LBSTNRHI": high, "LBNRIND": indicator}


def _last_before_exposure(s: Subject, d: str, rows: list[dict[str, Any]]) -> set[int]:
    if s.rfstdtc is None:
        return set()
    last: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r[f"{d}DTC"], r[f"{d}SPID"])):
        if row[f"{d}DTC"] <= s.rfstdtc and row[f"{d}ORRES"] is not None:
            last[row[f"{d}TESTCD"]] = row
    return {id(r) for r in last.values()}


def _disease_status(s: Subject) -> list[tuple[Any, dict[str, Any]]]:
    out = []
    statuses = [(v, r.date, "RELAPSE") for v, r in s.p.active(vo.Relapse)]
    statuses += [(v, r.date, "RELAPSE" if r.disease == "relapsed" else "DISEASE FREE")
                 for v, r in s.p.active(vo.Contact) if r.disease]
    for version, day, status in statuses:
        out.append(((day, version), {"RSSPID": s.ref(version), "RSTESTCD": "DISSTAT", "RSTEST": "Disease Status",
                                     "RSCAT": "DISEASE STATUS", "RSORRES": status, "RSSTRESC": status,
                                     **s.visit(day), "RSDTC": day, "RSDY": s.dy(day)}))
    return out


def _organ_scores(s: Subject) -> list[tuple[Any, dict[str, Any]]]:
    out = []
    for version, g in s.p.active(vo.GvhdAssessment):
        for organ, score in g.organ.items():
            out.append(((g.date, version), {
                "XGSPID": s.ref(version), "XGTESTCD": f"{organ.upper()[:6]}SC", "XGTEST": f"NIH Organ Score - {organ}",
                "XGCAT": "CHRONIC GVHD", "XGORRES": str(score), "XGSTRESC": str(score), "XGSTRESN": score,
                **s.visit(g.date), "XGDTC": g.date, "XGDY": s.dy(g.date)}))
    return out


def mb(s: Subject) -> None:
    for version, i in sorted(s.p.active(vo.Infection), key=lambda vr: (vr[1].onset, vr[0])):
        if i.organism:
            s.add("MB", MBSPID=s.ref(version), MBTESTCD="MICROORG", MBTEST="Microorganism Identification",
                  MBCAT="INFECTION", MBORRES=i.organism, MBSTRESC=i.organism.upper(), MBLOC=i.site.upper(),
                  **s.visit(i.onset), MBDTC=i.onset, MBDY=s.dy(i.onset))


def relrec(s: Subject) -> None:
    """Record-level relationships: an infection's AE row and its MB row; the DS death row and DD."""
    pairs = []
    ae_rows = {r["AESPID"]: r for r in s.rows.get("AE", []) if r["AECAT"] == "INFECTION"}
    for row in s.rows.get("MB", []):
        if row["MBSPID"] in ae_rows:
            pairs.append((("AE", "AESEQ", ae_rows[row["MBSPID"]]["AESEQ"]), ("MB", "MBSEQ", row["MBSEQ"])))
    deaths = [r for r in s.rows.get("DS", []) if r["DSDECOD"] == "DEATH"]
    for dd_row in s.rows.get("DD", []):
        for ds_row in deaths:
            pairs.append((("DS", "DSSEQ", ds_row["DSSEQ"]), ("DD", "DDSEQ", dd_row["DDSEQ"])))
    rows = s.rows.setdefault("RELREC", [])
    for n, pair in enumerate(pairs, start=1):
        for domain, idvar, seq in pair:
            rows.append({"STUDYID": s.trial, "RDOMAIN": domain, "USUBJID": s.usubjid, "IDVAR": idvar,
                         "IDVARVAL": str(seq), "RELTYPE": None, "RELID": f"{s.p.subject}-R{n}"})
