"""Trial design datasets (TS, TA, TE, TV, TI) and RELREC: metadata and rows.

The study-level facts come from the trial's registry record (NCT06171906: phase 4, interventional,
single group, open label, 68 planned adults aged 18-60 in China, UC-MSC 1x10^6 cells/kg weekly x4)
and the protocol parameters; the counts and dates that change (ACTSUB, SSTDTC, DCUTDTC) are derived
from the exported subjects.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pgf_events.exports.sdtm.events import TREATMENT, criteria_text
from pgf_events.exports.sdtm.meta import ARM_DESC, EPOCH, ID, _ds
from pgf_events.exports.sdtm.subject import TREATMENT_TAIL_DAYS, planned_visits
from pgf_events.exports.spec import Dataset
from pgf_events.protocol import Protocol

STUDY = "STUDYID|Study Identifier|text|Assigned\nDOMAIN|Domain Abbreviation|text|Assigned"
DESIGN: dict[str, Dataset] = {d.name: d for d in (
    _ds("TS", "Trial Summary", "TRIAL DESIGN", "One record per trial summary parameter value", "STUDYID TSPARMCD TSSEQ",
        STUDY + """
TSSEQ|Sequence Number|integer|Assigned
TSPARMCD|Trial Summary Parameter Short Name|text|Assigned
TSPARM|Trial Summary Parameter|text|Assigned
TSVAL|Parameter Value|text|Assigned
TSVALCD|Parameter Value Code|text|Assigned
TSVCDREF|Name of the Reference Terminology|text|Assigned"""),
    _ds("TA", "Trial Arms", "TRIAL DESIGN", "One record per planned Element per Arm", "STUDYID ARMCD TAETORD",
        STUDY + """
ARMCD|Planned Arm Code|text|Assigned
ARM|Description of Planned Arm|text|Assigned
TAETORD|Planned Order of Element within Arm|integer|Assigned
ETCD|Element Code|text|Assigned
ELEMENT|Description of Element|text|Assigned
TABRANCH|Branch|text|Assigned
TATRANS|Transition Rule|text|Assigned
EPOCH|Epoch|text|Assigned""", EPOCH=EPOCH),
    _ds("TE", "Trial Elements", "TRIAL DESIGN", "One record per planned Element", "STUDYID ETCD", STUDY + """
ETCD|Element Code|text|Assigned
ELEMENT|Description of Element|text|Assigned
TESTRL|Rule for Start of Element|text|Assigned
TEENRL|Rule for End of Element|text|Assigned
TEDUR|Planned Duration of Element|text|Assigned"""),
    _ds("TV", "Trial Visits", "TRIAL DESIGN", "One record per planned Visit per Arm", "STUDYID VISITNUM", STUDY + """
VISITNUM|Visit Number|float|Assigned
VISIT|Visit Name|text|Assigned
VISITDY|Planned Study Day of Visit|integer|Assigned
ARMCD|Planned Arm Code|text|Assigned
ARM|Description of Planned Arm|text|Assigned
TVSTRL|Visit Start Rule|text|Assigned""", ),
    _ds("TI", "Trial Inclusion/Exclusion Criteria", "TRIAL DESIGN", "One record per I/E criterion",
        "STUDYID IETESTCD", STUDY + """
IETESTCD|Incl/Excl Criterion Short Name|text|Assigned
IETEST|Inclusion/Exclusion Criterion|text|Assigned
IECAT|Inclusion/Exclusion Category|text|Assigned
TIVERS|Protocol Criteria Versions|text|Assigned"""),
    _ds("RELREC", "Related Records", "RELATIONSHIP", "One record per related record", "STUDYID USUBJID RELID RDOMAIN",
        """STUDYID|Study Identifier|text|Assigned
RDOMAIN|Related Domain Abbreviation|text|Assigned
USUBJID|Unique Subject Identifier|text|Derived
IDVAR|Identifying Variable|text|Assigned
IDVARVAL|Identifying Variable Value|text|Derived
RELTYPE|Relationship Type|text|Assigned
RELID|Relationship Identifier|text|Derived"""),
)}
assert ID  # the subject identifiers are the same three variables in every subject-level dataset
ELEMENTS = (("SCRN", "Screening", "Informed consent", "First MSC infusion, or screen failure"),
            ("MSC", "UC-MSC infusions", "First MSC infusion", f"{TREATMENT_TAIL_DAYS} days after the last infusion"),
            ("FU", "Follow-up", f"{TREATMENT_TAIL_DAYS} days after the last infusion", "Death, withdrawal or end of study"))
EPOCHS = {"SCRN": "SCREENING", "MSC": "TREATMENT", "FU": "FOLLOW-UP"}


def design_rows(trial: str, params: Protocol, subjects: int, enrolled: int, first_consent: date | None,
                cutoff: date) -> dict[str, list[dict[str, Any]]]:
    base = {"STUDYID": trial}
    ts_params = [
        ("TITLE", "Trial Title", "Clinical Study of MSCs for Treatment of Poor Graft Function After Allogeneic "
                                 "Hematopoietic Stem Cell Transplantation", None, None),
        ("REGID", "Registry Identifier", trial, trial, "ClinicalTrials.gov"),
        ("TPHASE", "Trial Phase Classification", "PHASE IV TRIAL", "C15603", "CDISC CT"),
        ("STYPE", "Study Type", "INTERVENTIONAL", "C98388", "CDISC CT"),
        ("INTMODEL", "Intervention Model", "SINGLE GROUP", "C82639", "CDISC CT"),
        ("TBLIND", "Trial Blinding Schema", "OPEN LABEL", "C49659", "CDISC CT"),
        ("RANDOM", "Trial is Randomized", "N", "C49487", "CDISC CT"),
        ("NARMS", "Planned Number of Arms", "1", None, None),
        ("TRT", "Investigational Therapy or Treatment", TREATMENT, None, None),
        ("DOSE", "Dose per Administration", "1", None, None),
        ("DOSU", "Dose Units", "10^6 cells/kg", None, None),
        ("DOSFRQ", "Dosing Frequency", "QS", "C64526", "CDISC CT"),
        ("ROUTE", "Route of Administration", "INTRAVENOUS", "C38276", "CDISC CT"),
        ("INDIC", "Trial Disease/Condition Indication", "Poor graft function after allogeneic HSCT", None, None),
        ("AGEMIN", "Planned Minimum Age of Subjects", "P18Y", None, "ISO 8601"),
        ("AGEMAX", "Planned Maximum Age of Subjects", "P60Y", None, "ISO 8601"),
        ("SEXPOP", "Sex of Participants", "BOTH", "C49636", "CDISC CT"),
        ("PLANSUB", "Planned Number of Subjects", "68", None, None),
        ("ACTSUB", "Actual Number of Subjects", str(enrolled), None, None),
        ("SCRNSUB", "Number of Subjects Screened", str(subjects), None, None),
        ("PLANDOSE", "Planned Number of Doses", str(params.planned_doses), None, None),
        ("PROTVERS", "Protocol Version", params.version, None, None),
        ("SDTIGVER", "SDTM IG Version", "3.4", None, None),
        ("SDTMVER", "SDTM Version", "2.0", None, None),
        ("COUNTRY", "Trial Country", "CHN", "CHN", "ISO 3166-1 Alpha-3"),
        ("SSTDTC", "Study Start Date", first_consent.isoformat() if first_consent else None, None, "ISO 8601"),
        ("DCUTDTC", "Data Cutoff Date", cutoff.isoformat(), None, "ISO 8601"),
    ]
    ts = [{**base, "DOMAIN": "TS", "TSSEQ": 1, "TSPARMCD": code, "TSPARM": name, "TSVAL": value, "TSVALCD": cd,
           "TSVCDREF": ref} for code, name, value, cd, ref in ts_params if value is not None]
    ta = [{**base, "DOMAIN": "TA", "ARMCD": "MSC", "ARM": ARM_DESC, "TAETORD": n, "ETCD": code, "ELEMENT": name,
           "TABRANCH": None, "TATRANS": None, "EPOCH": EPOCHS[code]} for n, (code, name, _, _) in enumerate(ELEMENTS, 1)]
    te = [{**base, "DOMAIN": "TE", "ETCD": code, "ELEMENT": name, "TESTRL": start, "TEENRL": end,
           "TEDUR": "P28D" if code == "MSC" else None} for code, name, start, end in ELEMENTS]
    tv = [{**base, "DOMAIN": "TV", "VISITNUM": number, "VISIT": name,
           "VISITDY": None if number == 1 else 1 + 7 * (int(number) - 2), "ARMCD": "MSC", "ARM": ARM_DESC,
           "TVSTRL": "Screening, before enrolment" if number == 1 else f"Infusion {int(number) - 1}, weekly from D1"}
          for number, name, _ in planned_visits(params)]
    ti = [{**base, "DOMAIN": "TI", "IETESTCD": code, "IETEST": text, "IECAT": "INCLUSION" if code.startswith("IN")
           else "EXCLUSION", "TIVERS": params.version} for code, text in criteria_text(params).items()]
    return {"TS": ts, "TA": ta, "TE": te, "TV": tv, "TI": ti}
