"""AE, EX, PR, DD and IE of one subject.

AE holds adverse events (``AECAT`` ADVERSE EVENT) and infection episodes (``AECAT`` INFECTION).
Infection episodes are recorded without seriousness, causality or outcome: their AESER/AESDTH are
derived from the grade (grade 5 is fatal, so serious by death; otherwise ``N``), AEREL is
``NOT ASSESSED`` (a sponsor-defined causality term), AEOUT ``FATAL`` for grade 5 and ``UNKNOWN``
otherwise, AEACN ``UNKNOWN``. AEOUT of an adverse event is the CDISC OUT term (older free-text
outcomes are mapped; see :func:`outcome`). AEDECOD repeats the verbatim term (no MedDRA coding).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.exports.sdtm.subject import Subject
from pgf_events.protocol import Protocol

SERIOUSNESS_FLAGS = {
    "death": "AESDTH", "life-threatening": "AESLIFE", "hospitalisation": "AESHOSP", "disability": "AESDISAB",
    "congenital-anomaly": "AESCONG", "important-medical-event": "AESMIE",
}
RELATEDNESS = {
    "not": "NOT RELATED", "unlikely": "UNLIKELY RELATED", "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED", "definite": "RELATED",
}
CRITERIA_TEXT = {
    "IN1": "Candidate for allo-HSCT or PGF after allo-HSCT", "IN2": "Age 18 to 60 years at screening",  # the default; criteria_text() gives the protocol's
    "IN3": "KPS > 60 and expected survival > 3 months", "IN4": "No serious organ damage",
    "IN5": "No other contraindication to HSCT", "IN6": "Informed consent given",
    "EX1": "Severe heart, kidney or liver dysfunction", "EX2": "Other malignancy needing treatment",
    "EX3": "Brain dysfunction or severe mental illness", "EX4": "Cannot complete treatment and follow-up",
    "EX5": "Severe acute allergic reactions", "EX6": "Uncontrolled active infection",
    "EX7": "Participating in another clinical trial", "EX8": "Investigator judgement",
}


def criteria_text(params: Protocol) -> dict[str, str]:
    """The criteria's wording with the protocol's own age window and IN3 thresholds."""
    return {**CRITERIA_TEXT,
            "IN2": f"Age {params.age_min_years} to {params.age_max_years} years at screening",
            "IN3": f"KPS > {params.kps_min_exclusive} and expected survival > "
                   f"{params.expected_survival_min_months_exclusive:g} months"}
OUTCOMES = ("FATAL", "NOT RECOVERED/NOT RESOLVED", "RECOVERED/RESOLVED", "RECOVERED/RESOLVED WITH SEQUELAE",
            "RECOVERING/RESOLVING", "UNKNOWN")
_LEGACY_OUTCOMES = (  # (pattern in free text, CDISC term), first match wins
    (r"fatal|death|died", "FATAL"), (r"sequela", "RECOVERED/RESOLVED WITH SEQUELAE"),
    (r"not (recovered|resolved)|ongoing|persist", "NOT RECOVERED/NOT RESOLVED"),
    (r"recovering|resolving|improv", "RECOVERING/RESOLVING"), (r"recovered|resolved", "RECOVERED/RESOLVED"),
)
TREATMENT = "UMBILICAL CORD MESENCHYMAL STROMAL CELLS"
_REF_IN_REASON = re.compile(r"\((?P<ref>[^()\s]+#\d+)\)")


def outcome(text: str | None, grade: int, end: date | None) -> str:
    """The CDISC OUT term of a recorded outcome (already a term, or legacy free text), else from grade/end."""
    if text:
        upper = text.strip().upper()
        if upper in OUTCOMES:
            return upper
        for pattern, term in _LEGACY_OUTCOMES:
            if re.search(pattern, text, re.IGNORECASE):
                return term
    if grade == 5:
        return "FATAL"
    return "RECOVERED/RESOLVED" if end else "UNKNOWN"


def ae(s: Subject) -> None:
    events: list[tuple[date, int, Callable[[Subject, int, Any], None], Any]] = []
    events += [(a.onset, version, _adverse_event, a) for version, a in s.p.active(vo.AdverseEvent)]
    events += [(i.onset, version, _infection, i) for version, i in s.p.active(vo.Infection)]
    for _, version, emit, record in sorted(events, key=lambda e: (e[0], e[1])):
        emit(s, version, record)


def _adverse_event(s: Subject, version: int, a: vo.AdverseEvent) -> None:
    flags = {flag: ("Y" if criterion in a.serious else "N") for criterion, flag in SERIOUSNESS_FLAGS.items()}
    action = getattr(a, "action", None)
    s.add("AE", AESPID=s.ref(version), AETERM=a.term, AEDECOD=a.term.upper(), AECAT="ADVERSE EVENT",
          AESER="Y" if a.serious else "N", AEACN=action.upper() if action else "UNKNOWN",
          AEREL=RELATEDNESS.get(a.related or "", "NOT ASSESSED"), AEOUT=outcome(a.outcome, a.grade, a.end), **flags,
          AETOXGR=str(a.grade), EPOCH=s.epoch(a.onset), AESTDTC=a.onset, AEENDTC=a.end, AESTDY=s.dy(a.onset),
          AEENDY=s.dy(a.end))


def infection_term(i: vo.Infection) -> str:
    return f"{i.site} infection" + (f" ({i.organism})" if i.organism else "")


def _infection(s: Subject, version: int, i: vo.Infection) -> None:
    fatal = i.grade == 5
    flags = dict.fromkeys(SERIOUSNESS_FLAGS.values(), "N")
    flags["AESDTH"] = "Y" if fatal else "N"
    term = infection_term(i)
    s.add("AE", AESPID=s.ref(version), AETERM=term, AEDECOD=term.upper(), AECAT="INFECTION",
          AESER="Y" if fatal else "N", AEACN="UNKNOWN", AEREL="NOT ASSESSED", AEOUT="FATAL" if fatal else "UNKNOWN",
          **flags, AETOXGR=str(i.grade), EPOCH=s.epoch(i.onset), AESTDTC=i.onset, AESTDY=s.dy(i.onset))


def ex(s: Subject) -> None:
    for version, infusion in s.infusions:
        s.add("EX", EXSPID=s.ref(version), EXTRT=TREATMENT, EXDOSE=infusion.cells / infusion.weight_kg / 1e6,
              EXDOSU="10^6 cells/kg", EXDOSFRM="SUSPENSION", EXROUTE="INTRAVENOUS", EXLOT=infusion.lot,
              **s.visit(infusion.date), EXSTDTC=infusion.date, EXENDTC=infusion.date, EXSTDY=s.dy(infusion.date),
              EXENDY=s.dy(infusion.date))


def pr(s: Subject) -> None:
    for version, t in sorted(s.p.active(vo.Transfusion), key=lambda vr: (vr[1].date, vr[0])):
        treatment = "RED BLOOD CELL TRANSFUSION" if t.product == "rbc" else "PLATELET TRANSFUSION"
        s.add("PR", PRSPID=s.ref(version), PRTRT=treatment, PRCAT="TRANSFUSION", PRDOSE=t.units, PRDOSU="U",
              **s.visit(t.date), PRSTDTC=t.date, PRSTDY=s.dy(t.date))


def dd(s: Subject) -> None:
    if s.p.death:
        version, death = s.p.death
        cause = death.cause or "UNKNOWN"
        s.add("DD", DDSPID=s.ref(version), DDTESTCD="PRCDTH", DDTEST="Primary Cause of Death", DDORRES=cause,
              DDSTRESC=cause.upper(), EPOCH=s.epoch(death.date), DDDTC=death.date, DDDY=s.dy(death.date))


def ie(s: Subject) -> None:
    """Only criteria not met (SDTM convention), derived criteria (IN2, IN3, IN6) included."""
    result = s.p.eligibility(s.params)
    screenings = sorted(s.p.active(vo.Screening), key=lambda vr: (vr[1].date, vr[0]))
    latest = screenings[-1] if screenings else None
    by_ref = {s.ref(v): r for v, r in screenings}
    for code in result.unmet:
        match = _REF_IN_REASON.search(result.reasons.get(code, ""))
        ref = match["ref"] if match and match["ref"] in by_ref else (s.ref(latest[0]) if latest else None)
        day = by_ref[ref].date if ref in by_ref else None
        inclusion = code.startswith("IN")
        answer = "N" if inclusion else "Y"
        s.add("IE", IESPID=ref, IETESTCD=code, IETEST=criteria_text(s.params)[code],
              IECAT="INCLUSION" if inclusion else "EXCLUSION", IEORRES=answer, IESTRESC=answer, **s.visit(day),
              IEDTC=day, IEDY=s.dy(day))
