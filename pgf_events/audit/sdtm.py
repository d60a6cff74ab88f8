"""SDTM-shaped CSV datasets (``pgf export sdtm DIR``): DM, IE, EX, LB, AE, PR, DS, DD.

Built from each patient's *effective* records as of the export time: voided records are left out,
corrections are applied (the Patient aggregate resolves both). Every row's ``--SPID`` is the
reference of the source event (``S001#5``) so any value can be traced to ``pgf history``.

Conventions (documented choices where SDTM leaves them to the sponsor):

- ``USUBJID`` = ``STUDYID-SUBJID``; ``--DY`` relative to ``RFSTDTC`` = first MSC infusion.
- ``ARMCD``: ``MSC`` for enrolled patients, ``SCRNFAIL`` for ineligible ones, ``NOTASSGN``
  otherwise; ``ACTARMCD`` ``NOTTRT`` for enrolled patients never infused.
- ``EXDOSE`` in 10^6 cells/kg (cells infused / weight recorded for that dose).
- LB: ``NEUT``, ``PLAT``, ``WBC`` in 10^9/L and ``HGB`` in g/L (HEMATOLOGY), ``BILI`` in umol/L
  (CHEMISTRY); values as stored (g/dL entries were converted to g/L on entry).
- AE: adverse events (``AECAT`` ``ADVERSE EVENT``) and infection episodes (``AECAT``
  ``INFECTION``, seriousness not collected so left blank); ``AEDECOD`` repeats the verbatim term
  (no MedDRA coding in this system).
- IE holds only criteria not met (SDTM convention), derived criteria (IN2, IN3, IN6) included.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pgf_events.audit.source import fold, patient_streams
from pgf_events.domain import values as vo
from pgf_events.domain.kinds import KINDS
from pgf_events.domain.patient import Patient
from pgf_events.domain.rules.eligibility import age_in_years
from pgf_events.protocol import Protocol

DATASETS: dict[str, tuple[str, ...]] = {
    "DM": ("STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC",
           "RFPENDTC", "DTHDTC", "DTHFL", "SITEID", "BRTHDTC", "AGE", "AGEU", "SEX", "ARMCD", "ARM",
           "ACTARMCD", "ACTARM"),
    "IE": ("STUDYID", "DOMAIN", "USUBJID", "IESEQ", "IESPID", "IETESTCD", "IETEST", "IECAT", "IEORRES",
           "IESTRESC", "IEDTC", "IEDY"),
    "EX": ("STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXSPID", "EXTRT", "EXDOSE", "EXDOSU", "EXDOSFRM",
           "EXROUTE", "EXLOT", "EXSTDTC", "EXENDTC", "EXSTDY", "EXENDY"),
    "LB": ("STUDYID", "DOMAIN", "USUBJID", "LBSEQ", "LBSPID", "LBTESTCD", "LBTEST", "LBCAT", "LBORRES",
           "LBORRESU", "LBSTRESC", "LBSTRESN", "LBSTRESU", "LBDTC", "LBDY"),
    "AE": ("STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AESPID", "AETERM", "AEDECOD", "AECAT", "AESTDTC",
           "AEENDTC", "AESTDY", "AEENDY", "AETOXGR", "AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB",
           "AESCONG", "AESMIE", "AEREL", "AEOUT"),
    "PR": ("STUDYID", "DOMAIN", "USUBJID", "PRSEQ", "PRSPID", "PRTRT", "PRCAT", "PRDOSE", "PRDOSU",
           "PRSTDTC", "PRSTDY"),
    "DS": ("STUDYID", "DOMAIN", "USUBJID", "DSSEQ", "DSSPID", "DSTERM", "DSDECOD", "DSCAT", "DSSCAT",
           "DSSTDTC", "DSSTDY"),
    "DD": ("STUDYID", "DOMAIN", "USUBJID", "DDSEQ", "DDSPID", "DDTESTCD", "DDTEST", "DDORRES", "DDSTRESC",
           "DDDTC", "DDDY"),
}
CRITERIA_TEXT = {
    "IN1": "Candidate for allo-HSCT or PGF after allo-HSCT", "IN2": "Age 18 to 60 years at screening",
    "IN3": "KPS > 60 and expected survival > 3 months", "IN4": "No serious organ damage",
    "IN5": "No other contraindication to HSCT", "IN6": "Informed consent given",
    "EX1": "Severe heart, kidney or liver dysfunction", "EX2": "Other malignancy needing treatment",
    "EX3": "Brain dysfunction or severe mental illness", "EX4": "Cannot complete treatment and follow-up",
    "EX5": "Severe acute allergic reactions", "EX6": "Uncontrolled active infection",
    "EX7": "Participating in another clinical trial", "EX8": "Investigator judgement",
}
SERIOUSNESS_FLAGS = {
    "death": "AESDTH", "life-threatening": "AESLIFE", "hospitalisation": "AESHOSP", "disability": "AESDISAB",
    "congenital-anomaly": "AESCONG", "important-medical-event": "AESMIE",
}
RELATEDNESS = {
    "not": "NOT RELATED", "unlikely": "UNLIKELY RELATED", "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED", "definite": "RELATED",
}
ARMS = {
    "MSC": "UC-MSC 1x10^6 cells/kg weekly x4", "SCRNFAIL": "Screen Failure", "NOTASSGN": "Not Assigned",
    "NOTTRT": "Not Treated",
}
_REF_IN_REASON = re.compile(r"\((?P<ref>[^()\s]+#\d+)\)")


def _num(value: float) -> str:
    return f"{value:.10g}"


def study_day(day: date | None, reference: date | None) -> int | None:
    if day is None or reference is None:
        return None
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


class PatientDatasets:
    """The rows one patient contributes to each dataset."""

    def __init__(self, trial: str, patient: Patient, params: Protocol):
        self.trial = trial
        self.p = patient
        self.params = params
        self.usubjid = f"{trial}-{patient.subject}"
        infusions = sorted(patient.active(vo.Infusion), key=lambda vr: vr[1].date)
        self.infusions = infusions
        self.rfstdtc = infusions[0][1].date if infusions else None
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in DATASETS}

    def add(self, domain: str, **values: Any) -> None:
        rows = self.rows[domain]
        rows.append({"STUDYID": self.trial, "DOMAIN": domain, "USUBJID": self.usubjid,
                     f"{domain}SEQ": len(rows) + 1, **values})

    def dy(self, day: date | None) -> int | None:
        return study_day(day, self.rfstdtc)

    def build(self) -> dict[str, list[dict[str, Any]]]:
        for part in (self.dm, self.ie, self.ex, self.lb, self.ae, self.pr, self.ds, self.dd):
            part()
        return self.rows

    def dm(self) -> None:
        p, reg = self.p, self.p.registration
        screenings = sorted(p.active(vo.Screening), key=lambda vr: vr[1].date)
        consents = sorted(p.active(vo.Consent), key=lambda vr: vr[1].date)
        age_day = screenings[0][1].date if screenings else reg.clinical_date
        death = p.death
        eligibility = p.eligibility(self.params).status
        armcd = "MSC" if p.enrolment else ("SCRNFAIL" if eligibility == "ineligible" else "NOTASSGN")
        actarmcd = ("MSC" if self.infusions else "NOTTRT") if armcd == "MSC" else armcd
        last = max([reg.transplant_date] + [max(d for _, d in r.dates()) for _, r in p.clinical_records()])
        row = {
            "SUBJID": p.subject, "RFSTDTC": self.rfstdtc,
            "RFENDTC": self.infusions[-1][1].date if self.infusions else None,
            "RFXSTDTC": self.rfstdtc, "RFXENDTC": self.infusions[-1][1].date if self.infusions else None,
            "RFICDTC": consents[0][1].date if consents else None, "RFPENDTC": last,
            "DTHDTC": death[1].date if death else None, "DTHFL": "Y" if death else None,
            "SITEID": reg.site, "BRTHDTC": reg.birth_date, "AGE": age_in_years(reg.birth_date, age_day),
            "AGEU": "YEARS", "SEX": reg.sex, "ARMCD": armcd, "ARM": ARMS[armcd], "ACTARMCD": actarmcd,
            "ACTARM": ARMS[actarmcd],
        }
        self.rows["DM"].append({"STUDYID": self.trial, "DOMAIN": "DM", "USUBJID": self.usubjid, **row})

    def ie(self) -> None:
        result = self.p.eligibility(self.params)
        screenings = sorted(self.p.active(vo.Screening), key=lambda vr: (vr[1].date, vr[0]))
        latest = screenings[-1] if screenings else None
        by_ref = {self.p.ref(v): s for v, s in screenings}
        for code in result.unmet:
            match = _REF_IN_REASON.search(result.reasons.get(code, ""))
            ref = match["ref"] if match and match["ref"] in by_ref else (self.p.ref(latest[0]) if latest else None)
            day = by_ref[ref].date if ref in by_ref else None
            inclusion = code.startswith("IN")
            self.add("IE", IESPID=ref, IETESTCD=code, IETEST=CRITERIA_TEXT[code],
                     IECAT="INCLUSION" if inclusion else "EXCLUSION", IEORRES="N" if inclusion else "Y",
                     IESTRESC="N" if inclusion else "Y", IEDTC=day, IEDY=self.dy(day))

    def ex(self) -> None:
        for version, infusion in self.infusions:
            self.add("EX", EXSPID=self.p.ref(version), EXTRT="UMBILICAL CORD MESENCHYMAL STROMAL CELLS",
                     EXDOSE=_num(infusion.cells / infusion.weight_kg / 1e6), EXDOSU="10^6 cells/kg",
                     EXDOSFRM="SUSPENSION", EXROUTE="INTRAVENOUS", EXLOT=infusion.lot, EXSTDTC=infusion.date,
                     EXENDTC=infusion.date, EXSTDY=self.dy(infusion.date), EXENDY=self.dy(infusion.date))

    def lb(self) -> None:
        self.findings("LB")

    def findings(self, domain: str) -> None:
        """A findings dataset: one row per measured field of every kind that feeds it (the registry's tests)."""
        d = domain
        for kind in KINDS.values():
            if domain not in kind.sdtm:
                continue
            for version, record in sorted(self.p.active(kind.record), key=lambda vr: (vr[1].date, vr[0])):
                for f in kind.findings:
                    value = getattr(record, f.field)
                    if value is None:
                        continue
                    self.add(d, **{f"{d}SPID": self.p.ref(version), f"{d}TESTCD": f.code, f"{d}TEST": f.test,
                                   f"{d}CAT": f.category, f"{d}ORRES": _num(value), f"{d}ORRESU": f.unit,
                                   f"{d}STRESC": _num(value), f"{d}STRESN": _num(value), f"{d}STRESU": f.unit,
                                   f"{d}DTC": record.date, f"{d}DY": self.dy(record.date)})

    def ae(self) -> None:
        events: list[tuple[date, int, Callable[[], None]]] = []
        for version, ae in self.p.active(vo.AdverseEvent):
            events.append((ae.onset, version, functools.partial(self._adverse_event, version, ae)))
        for version, infection in self.p.active(vo.Infection):
            events.append((infection.onset, version, functools.partial(self._infection, version, infection)))
        for _, _, emit in sorted(events, key=lambda e: (e[0], e[1])):
            emit()

    def _adverse_event(self, version: int, ae: vo.AdverseEvent) -> None:
        flags = {flag: ("Y" if criterion in ae.serious else "N") for criterion, flag in SERIOUSNESS_FLAGS.items()}
        self.add("AE", AESPID=self.p.ref(version), AETERM=ae.term, AEDECOD=ae.term.upper(), AECAT="ADVERSE EVENT",
                 AESTDTC=ae.onset, AEENDTC=ae.end, AESTDY=self.dy(ae.onset), AEENDY=self.dy(ae.end),
                 AETOXGR=ae.grade, AESER="Y" if ae.serious else "N", **flags,
                 AEREL=RELATEDNESS.get(ae.related or ""), AEOUT=ae.outcome.upper() if ae.outcome else None)

    def _infection(self, version: int, infection: vo.Infection) -> None:
        term = f"{infection.site} infection" + (f" ({infection.organism})" if infection.organism else "")
        self.add("AE", AESPID=self.p.ref(version), AETERM=term, AEDECOD=term.upper(), AECAT="INFECTION",
                 AESTDTC=infection.onset, AESTDY=self.dy(infection.onset), AETOXGR=infection.grade)

    def pr(self) -> None:
        for version, t in sorted(self.p.active(vo.Transfusion), key=lambda vr: (vr[1].date, vr[0])):
            treatment = "RED BLOOD CELL TRANSFUSION" if t.product == "rbc" else "PLATELET TRANSFUSION"
            self.add("PR", PRSPID=self.p.ref(version), PRTRT=treatment, PRCAT="TRANSFUSION", PRDOSE=t.units,
                     PRDOSU="UNIT", PRSTDTC=t.date, PRSTDY=self.dy(t.date))

    def ds(self) -> None:
        p = self.p
        rows: list[tuple[date, int, dict[str, Any]]] = []
        for version, consent in p.active(vo.Consent):
            rows.append((consent.date, version, {"DSTERM": "INFORMED CONSENT OBTAINED",
                                                 "DSDECOD": "INFORMED CONSENT OBTAINED", "DSCAT": "PROTOCOL MILESTONE"}))
        if p.enrolment:
            version, enrolment = p.enrolment
            rows.append((enrolment.date, version, {"DSTERM": "ENROLLED", "DSDECOD": "ENROLLED",
                                                   "DSCAT": "PROTOCOL MILESTONE"}))
        result = p.eligibility(self.params)
        screenings = sorted(p.active(vo.Screening), key=lambda vr: (vr[1].date, vr[0]))
        if result.status == "ineligible" and not p.enrolment and screenings:
            version, screening = screenings[-1]
            rows.append((screening.date, version, {
                "DSTERM": "; ".join(result.reasons[c] for c in result.unmet)[:200], "DSDECOD": "SCREEN FAILURE",
                "DSCAT": "DISPOSITION EVENT"}))
        if len(self.infusions) >= self.params.planned_doses:
            version, last = self.infusions[-1]
            rows.append((last.date, version, {"DSTERM": "COMPLETED", "DSDECOD": "COMPLETED",
                                              "DSCAT": "DISPOSITION EVENT", "DSSCAT": "STUDY TREATMENT"}))
        if p.withdrawal:
            version, withdrawal = p.withdrawal
            by_subject = any(w in withdrawal.reason.lower() for w in ("consent", "patient", "subject"))
            rows.append((withdrawal.date, version, {
                "DSTERM": withdrawal.reason, "DSDECOD": "WITHDRAWAL BY SUBJECT" if by_subject else "OTHER",
                "DSCAT": "DISPOSITION EVENT"}))
        if p.death:
            version, death = p.death
            rows.append((death.date, version, {"DSTERM": "DEATH", "DSDECOD": "DEATH", "DSCAT": "DISPOSITION EVENT"}))
        for day, version, values in sorted(rows, key=lambda r: (r[0], r[1])):
            self.add("DS", DSSPID=p.ref(version), DSSTDTC=day, DSSTDY=self.dy(day), **values)

    def dd(self) -> None:
        if self.p.death:
            version, death = self.p.death
            cause = death.cause or "UNKNOWN"
            self.add("DD", DDSPID=self.p.ref(version), DDTESTCD="PRCDTH", DDTEST="Primary Cause of Death",
                     DDORRES=cause, DDSTRESC=cause.upper(), DDDTC=death.date, DDDY=self.dy(death.date))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def write_sdtm(app: Any, directory: Path, as_of: datetime | None = None) -> dict[str, int]:
    """Write ``dm.csv`` ... ``dd.csv`` into ``directory``; returns the row count per dataset."""
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        writers = {}
        for name, columns in DATASETS.items():
            f = stack.enter_context(open(directory / f"{name.lower()}.csv", "w", newline="", encoding="utf-8"))
            writers[name] = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
            writers[name].writeheader()
        counts = dict.fromkeys(DATASETS, 0)
        for _, events in patient_streams(app, as_of):
            patient = fold(events)
            for name, rows in PatientDatasets(app.protocol.trial, patient, app.protocol).build().items():
                for row in rows:
                    writers[name].writerow({k: _cell(row.get(k)) for k in DATASETS[name]})
                counts[name] += len(rows)
        return counts
