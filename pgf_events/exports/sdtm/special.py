"""DM, DS, MH, SE and SV of one subject (special-purpose and event domains about the course itself).

DM: planned arm ``MSC`` once enrolled; a screen failure or a patient never assigned has null
ARMCD/ARM/ACTARMCD/ACTARM with ARMNRS (SDTMIG 3.3+), an enrolled patient never infused has a null
actual arm with ARMNRS ``ASSIGNED, NOT TREATED``. COUNTRY is the trial's (every site is in China).

DS: protocol milestones (consent, enrolment) and disposition events with DSSCAT: end of study
treatment (4 doses completed, or withdrawn), and end of study participation (screen failure,
death, or COMPLETED once follow-up reached the protocol horizon). A patient still in follow-up
has no end-of-participation record yet (SDTMIG: disposition is recorded when it happens).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.rules.eligibility import age_in_years
from pgf_events.exports.sdtm.meta import ARM_DESC
from pgf_events.exports.sdtm.subject import Subject
from pgf_events.projections.clinical import latest_clinical_date

COUNTRY = "CHN"
ARM_CODE, ARM = "MSC", ARM_DESC


def dm(s: Subject) -> None:
    p, reg = s.p, s.p.registration
    screenings = sorted(p.active(vo.Screening), key=lambda vr: vr[1].date)
    consents = sorted(p.active(vo.Consent), key=lambda vr: vr[1].date)
    age_day = screenings[0][1].date if screenings else reg.clinical_date
    death = p.death
    armcd = actarmcd = None
    if p.enrolment:
        armcd = ARM_CODE
        actarmcd = ARM_CODE if s.infusions else None
        nrs = None if s.infusions else "ASSIGNED, NOT TREATED"
    else:
        nrs = "SCREEN FAILURE" if p.eligibility(s.params).status == "ineligible" else "NOT ASSIGNED"
    s.rows["DM"] = [{
        "STUDYID": s.trial, "DOMAIN": "DM", "USUBJID": s.usubjid, "SUBJID": p.subject, "RFSTDTC": s.rfstdtc,
        "RFENDTC": s.rfxendtc, "RFXSTDTC": s.rfstdtc, "RFXENDTC": s.rfxendtc,
        "RFICDTC": consents[0][1].date if consents else None, "RFPENDTC": end_of_participation(s),
        "DTHDTC": death[1].date if death else None, "DTHFL": "Y" if death else None, "SITEID": reg.site,
        "BRTHDTC": reg.birth_date, "AGE": age_in_years(reg.birth_date, age_day), "AGEU": "YEARS", "SEX": reg.sex,
        "ARMCD": armcd, "ARM": ARM if armcd else None, "ACTARMCD": actarmcd, "ACTARM": ARM if actarmcd else None,
        "ARMNRS": nrs, "COUNTRY": COUNTRY,
    }]


def end_of_participation(s: Subject) -> date:
    """The latest clinical date of any record (the registration's own date when there is none)."""
    return max((d for _, r in s.p.clinical_records() for _, d in r.clinical_dates()),
               default=s.p.registration.clinical_date)


def first_contact(s: Subject) -> date:
    """The earliest consent, screening or enrolment date (the registration's own date when there is none)."""
    days = [r.clinical_date for kind in (vo.Consent, vo.Screening, vo.Enrolment) for _, r in s.p.active(kind)]
    return min(days, default=s.p.registration.clinical_date)


def ds(s: Subject) -> None:
    p = s.p
    rows: list[tuple[date, int, dict[str, Any]]] = []

    def add(day: date, version: int, term: str, decod: str, cat: str, scat: str | None = None) -> None:
        rows.append((day, version, {"DSTERM": term[:200], "DSDECOD": decod, "DSCAT": cat, "DSSCAT": scat}))

    for version, consent in p.active(vo.Consent):
        add(consent.date, version, "INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE")
    if p.enrolment:
        add(p.enrolment[1].date, p.enrolment[0], "ENROLLED", "ENROLLED", "PROTOCOL MILESTONE")
    result = p.eligibility(s.params)
    screenings = sorted(p.active(vo.Screening), key=lambda vr: (vr[1].date, vr[0]))
    if result.status == "ineligible" and not p.enrolment and screenings:
        version, screening = screenings[-1]
        add(screening.date, version, "; ".join(result.reasons[c] for c in result.unmet), "SCREEN FAILURE",
            "DISPOSITION EVENT", "STUDY PARTICIPATION")
    if len(s.infusions) >= s.params.planned_doses:
        version, last = s.infusions[-1]
        add(last.date, version, "COMPLETED", "COMPLETED", "DISPOSITION EVENT", "STUDY TREATMENT")
    if p.withdrawal:
        version, withdrawal = p.withdrawal
        by_subject = any(w in withdrawal.reason.lower() for w in ("consent", "patient", "subject"))
        add(withdrawal.date, version, withdrawal.reason, "WITHDRAWAL BY SUBJECT" if by_subject else "OTHER",
            "DISPOSITION EVENT", "STUDY TREATMENT")
    if p.death:
        version, death = p.death
        add(death.date, version, "DEATH", "DEATH", "DISPOSITION EVENT", "STUDY PARTICIPATION")
    elif p.enrolment and s.rfstdtc:
        last, versions = latest_clinical_date(p)
        if last >= s.rfstdtc + timedelta(days=s.params.survival_horizon_days):
            add(last, max(versions), "COMPLETED", "COMPLETED", "DISPOSITION EVENT", "STUDY PARTICIPATION")
    for day, version, values in sorted(rows, key=lambda r: (r[0], r[1])):
        s.add("DS", DSSPID=s.ref(version), **values, EPOCH=s.epoch(day), DSSTDTC=day, DSSTDY=s.dy(day))


def mh(s: Subject) -> None:
    reg = s.p.registration
    if reg.diagnosis:
        s.add("MH", MHSPID=s.ref(1), MHTERM=reg.diagnosis, MHCAT="PRIMARY DIAGNOSIS", EPOCH=None)
    s.add("MH", MHSPID=s.ref(1), MHTERM=f"ALLOGENEIC HSCT ({reg.donor_type or 'donor type not recorded'})",
          MHCAT="TRANSPLANT HISTORY", EPOCH=s.epoch(reg.transplant_date), MHSTDTC=reg.transplant_date,
          MHSTDY=s.dy(reg.transplant_date))
    if s.p.enrolment:
        version, e = s.p.enrolment
        day = e.pgf_diagnosis_date
        s.add("MH", MHSPID=s.ref(version), MHTERM=f"{(e.pgf_type or 'unspecified').upper()} POOR GRAFT FUNCTION",
              MHCAT="POOR GRAFT FUNCTION", EPOCH=s.epoch(day), MHSTDTC=day, MHSTDY=s.dy(day))


def se(s: Subject) -> None:
    end = end_of_participation(s)
    first = min(first_contact(s), s.rfstdtc or end)
    spans = [("SCRN", "Screening", 1, "SCREENING", first, s.rfstdtc or end)]
    if s.rfstdtc and s.follow_up_start:
        spans.append(("MSC", "UC-MSC infusions", 2, "TREATMENT", s.rfstdtc, min(s.follow_up_start, max(end, s.rfstdtc))))
        if end > s.follow_up_start:
            spans.append(("FU", "Follow-up", 3, "FOLLOW-UP", s.follow_up_start, end))
    for code, name, order, epoch, start, stop in spans:
        s.add("SE", ETCD=code, ELEMENT=name, TAETORD=order if s.p.enrolment else None, EPOCH=epoch,
              SESTDTC=start, SEENDTC=stop, SESTDY=s.dy(start), SEENDY=s.dy(stop))


def sv(s: Subject) -> None:
    for day, (number, name) in sorted(s.visits.items(), key=lambda kv: kv[1][0]):
        row = s.add("SV", VISITNUM=number, VISIT=name, SVSTDTC=day, SVENDTC=day, SVSTDY=s.dy(day), SVENDY=s.dy(day),
                    SVUPDES="Day with recorded data outside the planned visits" if name.startswith("UNSCHED") else None)
        row.pop("SVSEQ")
