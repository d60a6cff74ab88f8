"""SDTMIG 3.4 metadata of every dataset ``pgf export sdtm`` writes: labels, types, origins, codelists.

Domains: the special-purpose DM, SE, SV; interventions EX, PR; events AE, DS, MH; findings IE, LB, VS,
MB, RS (Karnofsky status, a clinical classification as SDTMIG 3.3+ places it), DD; the sponsor-defined
findings domain XG (GVHD assessments: no SDTMIG domain holds MAGIC staging inputs or NIH organ scores);
the trial design datasets TS, TA, TE, TV, TI; and RELREC.
"""

from __future__ import annotations

from pgf_events.domain.kinds import KINDS
from pgf_events.exports.spec import Dataset, codelist, variables


def _test_codes(domain: str) -> list[str]:
    """The --TESTCD terms of a findings dataset: every registry Finding of that domain, in registry order."""
    return list(dict.fromkeys(f.code for k in KINDS.values() for f in k.findings if f.domain == domain))


_FINDING_UNITS = [f.unit for k in KINDS.values() for f in k.findings if f.unit]

NY = codelist("CL.NY", "No Yes Response", {"N": "No", "Y": "Yes"})
SEX = codelist("CL.SEX", "Sex", {"F": "Female", "M": "Male"})
AGEU = codelist("CL.AGEU", "Age Unit", ["YEARS"])
ARMNRS = codelist("CL.ARMNRS", "Arm Null Reason", ["SCREEN FAILURE", "NOT ASSIGNED", "ASSIGNED, NOT TREATED"])
COUNTRY = codelist("CL.COUNTRY", "Country", {"CHN": "China"})
OUT = codelist("CL.OUT", "Outcome of Event", ["FATAL", "NOT RECOVERED/NOT RESOLVED", "RECOVERED/RESOLVED",
                                               "RECOVERED/RESOLVED WITH SEQUELAE", "RECOVERING/RESOLVING", "UNKNOWN"])
ACN = codelist("CL.ACN", "Action Taken with Study Treatment", [
    "DOSE INCREASED", "DOSE NOT CHANGED", "DOSE REDUCED", "DRUG INTERRUPTED", "DRUG WITHDRAWN", "NOT APPLICABLE",
    "UNKNOWN", "DOSE DELAYED"], extended=["DOSE DELAYED"])  # an MSC infusion postponed because of the event
NRIND = codelist("CL.NRIND", "Reference Range Indicator", ["LOW", "NORMAL", "HIGH"])
EPOCH = codelist("CL.EPOCH", "Epoch", ["SCREENING", "TREATMENT", "FOLLOW-UP"])
UNIT = codelist("CL.UNIT", "Unit", list(dict.fromkeys([
    "10^9/L", "g/L", "g/dL", "umol/L", "mg/dL", "kg", "U", "%", "mL/day", "10^6 cells/kg", *_FINDING_UNITS])),
    extended=["10^6 cells/kg"])
ROUTE = codelist("CL.ROUTE", "Route of Administration", ["INTRAVENOUS"])
FRM = codelist("CL.FRM", "Pharmaceutical Dosage Form", ["SUSPENSION"])
IECAT = codelist("CL.IECAT", "Category for Inclusion/Exclusion", ["INCLUSION", "EXCLUSION"])
DSCAT = codelist("CL.DSCAT", "Category for Disposition Event", ["DISPOSITION EVENT", "PROTOCOL MILESTONE"])
DSSCAT = codelist("CL.DSSCAT", "Subcategory for Disposition Event", ["STUDY PARTICIPATION", "STUDY TREATMENT"],
                  extended=["STUDY PARTICIPATION", "STUDY TREATMENT"])
NCOMPLT = codelist("CL.NCOMPLT", "Completion/Reason for Non-Completion", [
    "COMPLETED", "DEATH", "SCREEN FAILURE", "WITHDRAWAL BY SUBJECT", "OTHER", "INFORMED CONSENT OBTAINED",
    "ENROLLED"])
TOXGR = codelist("CL.TOXGR", "Toxicity Grade", ["1", "2", "3", "4", "5"])
REL = codelist("CL.REL", "Causality (sponsor)", ["NOT RELATED", "UNLIKELY RELATED", "POSSIBLY RELATED",
                                                 "PROBABLY RELATED", "RELATED", "NOT ASSESSED"],
               extended=["NOT ASSESSED"])
LBTESTCD = codelist("CL.LBTESTCD", "Laboratory Test Code", _test_codes("LB"))
VSTESTCD = codelist("CL.VSTESTCD", "Vital Signs Test Code", _test_codes("VS"))
ARM_DESC = "UC-MSC 1x10^6 cells/kg weekly x4"

ID = """
STUDYID|Study Identifier|text|Assigned
DOMAIN|Domain Abbreviation|text|Assigned
USUBJID|Unique Subject Identifier|text|Derived"""
VISIT = """
VISITNUM|Visit Number|float|Derived
VISIT|Visit Name|text|Derived
EPOCH|Epoch|text|Derived"""


def _ds(name: str, label: str, klass: str, structure: str, keys: str, lines: str, custom: bool = False,
        **codelists: str) -> Dataset:
    return Dataset(name, label, klass, structure, tuple(keys.split()), variables(lines, codelists), custom=custom)


def _findings(d: str, label: str, extra: str = "", *, units: bool = True, custom: bool = False,
              **codelists: str) -> Dataset:
    unit = (f"\n{d}ORRESU|Original Units|text|Collected" if units else "")
    std_unit = (f"\n{d}STRESU|Standard Units|text|Derived" if units else "")
    lines = (ID + f"\n{d}SEQ|Sequence Number|integer|Derived\n{d}SPID|Sponsor-Defined Identifier|text|Assigned"
             f"\n{d}TESTCD|Short Name of Test|text|Assigned\n{d}TEST|Name of Test|text|Assigned"
             f"\n{d}CAT|Category|text|Assigned\n{d}ORRES|Result in Original Units|text|Collected{unit}"
             f"\n{d}STRESC|Result in Std Format|text|Derived\n{d}STRESN|Numeric Result in Std Units|float|Derived"
             f"{std_unit}{extra}" + VISIT + f"\n{d}DTC|Date/Time of Collection|date|Collected"
             f"\n{d}DY|Study Day of Collection|integer|Derived")
    cl = {"EPOCH": EPOCH, **({f"{d}ORRESU": UNIT, f"{d}STRESU": UNIT} if units else {}), **codelists}
    return _ds(d, label, "FINDINGS", "One record per test per visit per subject",
               f"STUDYID USUBJID {d}TESTCD VISITNUM {d}DTC", lines, custom=custom, **cl)


SDTM: dict[str, Dataset] = {d.name: d for d in (
    _ds("DM", "Demographics", "SPECIAL PURPOSE", "One record per subject", "STUDYID USUBJID", ID + """
SUBJID|Subject Identifier for the Study|text|Collected
RFSTDTC|Subject Reference Start Date/Time|date|Derived
RFENDTC|Subject Reference End Date/Time|date|Derived
RFXSTDTC|Date/Time of First Study Treatment|date|Derived
RFXENDTC|Date/Time of Last Study Treatment|date|Derived
RFICDTC|Date/Time of Informed Consent|date|Collected
RFPENDTC|Date/Time of End of Participation|date|Derived
DTHDTC|Date/Time of Death|date|Collected
DTHFL|Subject Death Flag|text|Derived
SITEID|Study Site Identifier|text|Collected
BRTHDTC|Date/Time of Birth|date|Collected
AGE|Age|integer|Derived
AGEU|Age Units|text|Assigned
SEX|Sex|text|Collected
ARMCD|Planned Arm Code|text|Assigned
ARM|Description of Planned Arm|text|Assigned
ACTARMCD|Actual Arm Code|text|Derived
ACTARM|Description of Actual Arm|text|Derived
ARMNRS|Reason Arm and/or Actual Arm is Null|text|Derived
COUNTRY|Country|text|Assigned""", DTHFL=NY, AGEU=AGEU, SEX=SEX, ARMNRS=ARMNRS, COUNTRY=COUNTRY),
    _ds("SE", "Subject Elements", "SPECIAL PURPOSE", "One record per actual Element per subject",
        "STUDYID USUBJID ETCD SESTDTC", ID + """
SESEQ|Sequence Number|integer|Derived
ETCD|Element Code|text|Derived
ELEMENT|Description of Element|text|Derived
TAETORD|Planned Order of Element within Arm|integer|Derived
EPOCH|Epoch|text|Derived
SESTDTC|Start Date/Time of Element|date|Derived
SEENDTC|End Date/Time of Element|date|Derived
SESTDY|Study Day of Start of Element|integer|Derived
SEENDY|Study Day of End of Element|integer|Derived""", EPOCH=EPOCH),
    _ds("SV", "Subject Visits", "SPECIAL PURPOSE", "One record per subject per actual visit",
        "STUDYID USUBJID VISITNUM", ID + """
VISITNUM|Visit Number|float|Derived
VISIT|Visit Name|text|Derived
SVSTDTC|Start Date/Time of Observation|date|Derived
SVENDTC|End Date/Time of Observation|date|Derived
SVSTDY|Study Day of Start of Observation|integer|Derived
SVENDY|Study Day of End of Observation|integer|Derived
SVUPDES|Description of Unplanned Visit|text|Derived"""),
    _ds("EX", "Exposure", "INTERVENTIONS", "One record per administration per subject",
        "STUDYID USUBJID EXTRT EXSTDTC", ID + """
EXSEQ|Sequence Number|integer|Derived
EXSPID|Sponsor-Defined Identifier|text|Assigned
EXTRT|Name of Treatment|text|Assigned
EXDOSE|Dose|float|Derived
EXDOSU|Dose Units|text|Assigned
EXDOSFRM|Dose Form|text|Assigned
EXROUTE|Route of Administration|text|Assigned
EXLOT|Lot Number|text|Collected""" + VISIT + """
EXSTDTC|Start Date/Time of Treatment|date|Collected
EXENDTC|End Date/Time of Treatment|date|Collected
EXSTDY|Study Day of Start of Treatment|integer|Derived
EXENDY|Study Day of End of Treatment|integer|Derived""", EXDOSU=UNIT, EXDOSFRM=FRM, EXROUTE=ROUTE, EPOCH=EPOCH),
    _ds("PR", "Procedures", "INTERVENTIONS", "One record per procedure per subject",
        "STUDYID USUBJID PRTRT PRSTDTC", ID + """
PRSEQ|Sequence Number|integer|Derived
PRSPID|Sponsor-Defined Identifier|text|Assigned
PRTRT|Reported Name of Procedure|text|Collected
PRCAT|Category|text|Assigned
PRDOSE|Dose|integer|Collected
PRDOSU|Dose Units|text|Assigned""" + VISIT + """
PRSTDTC|Start Date/Time of Procedure|date|Collected
PRSTDY|Study Day of Start of Procedure|integer|Derived""", PRDOSU=UNIT, EPOCH=EPOCH),
    _ds("AE", "Adverse Events", "EVENTS", "One record per adverse event per subject",
        "STUDYID USUBJID AEDECOD AESTDTC", ID + """
AESEQ|Sequence Number|integer|Derived
AESPID|Sponsor-Defined Identifier|text|Assigned
AETERM|Reported Term for the Adverse Event|text|Collected
AEDECOD|Dictionary-Derived Term|text|Derived
AECAT|Category for Adverse Event|text|Assigned
AESER|Serious Event|text|Collected
AEACN|Action Taken with Study Treatment|text|Collected
AEREL|Causality|text|Collected
AEOUT|Outcome of Adverse Event|text|Collected
AESCONG|Congenital Anomaly or Birth Defect|text|Collected
AESDISAB|Persist or Signif Disability/Incapacity|text|Collected
AESDTH|Results in Death|text|Collected
AESHOSP|Requires or Prolongs Hospitalization|text|Collected
AESLIFE|Is Life Threatening|text|Collected
AESMIE|Other Medically Important Serious Event|text|Collected
AETOXGR|Standard Toxicity Grade|text|Collected
EPOCH|Epoch|text|Derived
AESTDTC|Start Date/Time of Adverse Event|date|Collected
AEENDTC|End Date/Time of Adverse Event|date|Collected
AESTDY|Study Day of Start of Adverse Event|integer|Derived
AEENDY|Study Day of End of Adverse Event|integer|Derived""", AESER=NY, AEACN=ACN, AEREL=REL, AEOUT=OUT, AESCONG=NY,
        AESDISAB=NY, AESDTH=NY, AESHOSP=NY, AESLIFE=NY, AESMIE=NY, AETOXGR=TOXGR, EPOCH=EPOCH),
    _ds("DS", "Disposition", "EVENTS", "One record per disposition status or protocol milestone per subject",
        "STUDYID USUBJID DSDECOD DSSTDTC", ID + """
DSSEQ|Sequence Number|integer|Derived
DSSPID|Sponsor-Defined Identifier|text|Assigned
DSTERM|Reported Term for the Disposition Event|text|Collected
DSDECOD|Standardized Disposition Term|text|Derived
DSCAT|Category for Disposition Event|text|Assigned
DSSCAT|Subcategory for Disposition Event|text|Assigned
EPOCH|Epoch|text|Derived
DSSTDTC|Start Date/Time of Disposition Event|date|Collected
DSSTDY|Study Day of Start of Disposition Event|integer|Derived""", DSDECOD=NCOMPLT, DSCAT=DSCAT, DSSCAT=DSSCAT,
        EPOCH=EPOCH),
    _ds("MH", "Medical History", "EVENTS", "One record per medical history event per subject",
        "STUDYID USUBJID MHCAT MHTERM MHSTDTC", ID + """
MHSEQ|Sequence Number|integer|Derived
MHSPID|Sponsor-Defined Identifier|text|Assigned
MHTERM|Reported Term for the Medical History|text|Collected
MHCAT|Category for Medical History|text|Assigned
EPOCH|Epoch|text|Derived
MHSTDTC|Start Date/Time of Medical History Event|date|Collected
MHSTDY|Study Day of Start of Observation|integer|Derived""", EPOCH=EPOCH),
    _ds("IE", "Inclusion/Exclusion Criteria Not Met", "FINDINGS", "One record per criterion not met per subject",
        "STUDYID USUBJID IETESTCD", ID + """
IESEQ|Sequence Number|integer|Derived
IESPID|Sponsor-Defined Identifier|text|Assigned
IETESTCD|Inclusion/Exclusion Criterion Short Name|text|Assigned
IETEST|Inclusion/Exclusion Criterion|text|Assigned
IECAT|Inclusion/Exclusion Category|text|Assigned
IEORRES|I/E Criterion Original Result|text|Collected
IESTRESC|I/E Criterion Result in Std Format|text|Derived""" + VISIT + """
IEDTC|Date/Time of Collection|date|Collected
IEDY|Study Day of Collection|integer|Derived""", IECAT=IECAT, IEORRES=NY, IESTRESC=NY, EPOCH=EPOCH),
    _findings("LB", "Laboratory Test Results", """
LBORNRLO|Reference Range Lower Limit in Orig Unit|text|Assigned
LBORNRHI|Reference Range Upper Limit in Orig Unit|text|Assigned
LBSTNRLO|Reference Range Lower Limit-Std Units|float|Assigned
LBSTNRHI|Reference Range Upper Limit-Std Units|float|Assigned
LBNRIND|Reference Range Indicator|text|Derived
LBLOBXFL|Last Observation Before Exposure Flag|text|Derived""", LBTESTCD=LBTESTCD, LBNRIND=NRIND, LBLOBXFL=NY),
    _findings("VS", "Vital Signs", "\nVSLOBXFL|Last Observation Before Exposure Flag|text|Derived"
              "\nVSTPT|Planned Time Point Name|text|Collected",
              VSTESTCD=VSTESTCD, VSLOBXFL=NY),
    _findings("MB", "Microbiology Specimen", "\nMBLOC|Location of Infection|text|Collected", units=False),
    _findings("RS", "Disease Response and Clin Classification", units=False),
    _findings("XG", "GVHD Assessments (sponsor-defined)", custom=True),
    _ds("DD", "Death Details", "FINDINGS", "One record per finding per subject", "STUDYID USUBJID DDTESTCD", ID + """
DDSEQ|Sequence Number|integer|Derived
DDSPID|Sponsor-Defined Identifier|text|Assigned
DDTESTCD|Death Detail Assessment Short Name|text|Assigned
DDTEST|Death Detail Assessment Name|text|Assigned
DDORRES|Result or Finding as Collected|text|Collected
DDSTRESC|Character Result/Finding in Std Format|text|Derived
EPOCH|Epoch|text|Derived
DDDTC|Date/Time of Collection|date|Collected
DDDY|Study Day of Collection|integer|Derived""", EPOCH=EPOCH),
)}
