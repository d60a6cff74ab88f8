"""ADaMIG 1.3 metadata: ADSL, ADTTE, ADRS (hemogram responses), ADAE.

Every analysis record names its SDTM source (SRCDOM/SRCVAR/SRCSEQ: the dataset, the variable and the
--SEQ of the record the analysis date or value was taken from) and the pgf events it came from
(PGFREF: ``S001#14``, the references ``pgf history`` shows). Sponsor variables: DELENTRY (delayed
entry time, days, for the analysis from transplant conditional on reaching treatment), CMPEVFL (the
competing event of a competing-risks parameter), REASON (why a response is NR or not evaluable).
"""

from __future__ import annotations

from pgf_events.exports.sdtm.meta import AGEU, ARMNRS, COUNTRY, NY, SEX
from pgf_events.exports.spec import Dataset, codelist, variables

PARAMCD_TTE = codelist("CL.PARAMCD.TTE", "ADTTE Parameter Code", {
    "OS": "Overall Survival (days)", "DFS": "Disease-Free Survival (days)",
    "RELAPSE": "Time to Relapse, death competing (days)", "TTNEUT": "Time to Neutrophil Engraftment (days)",
    "TTRBC": "Time to Red-Cell Recovery (days)"})
PARAMCD_RS = codelist("CL.PARAMCD.RS", "ADRS Parameter Code", {
    "NEUTENG": "Neutrophil Engraftment", "RBCREC": "Red-Cell Recovery", "PLTRESP": "Best Platelet Response"})
RESP = codelist("CL.RESP", "Response", ["CR", "PR", "NR", "NE", "Y", "N"], extended=["Y", "N"])
EOSSTT = codelist("CL.EOSSTT", "End of Study Status", ["COMPLETED", "DISCONTINUED", "ONGOING"])

SOURCE = """
SRCDOM|Source Data|text|Derived
SRCVAR|Source Variable|text|Derived
SRCSEQ|Source Sequence Number|integer|Derived
PGFREF|pgf Event References|text|Derived"""
SUBJECT = """
STUDYID|Study Identifier|text|Predecessor
USUBJID|Unique Subject Identifier|text|Predecessor"""


def _ds(name: str, label: str, klass: str, structure: str, keys: str, lines: str, **codelists: str) -> Dataset:
    return Dataset(name, label, klass, structure, tuple(keys.split()), variables(lines, codelists), standard="ADaMIG")


ADAM: dict[str, Dataset] = {d.name: d for d in (
    _ds("ADSL", "Subject-Level Analysis Dataset", "SUBJECT LEVEL ANALYSIS DATASET", "One record per subject",
        "STUDYID USUBJID", SUBJECT + """
SUBJID|Subject Identifier for the Study|text|Predecessor
SITEID|Study Site Identifier|text|Predecessor
COUNTRY|Country|text|Predecessor
AGE|Age|integer|Predecessor
AGEU|Age Units|text|Predecessor
SEX|Sex|text|Predecessor
ARM|Description of Planned Arm|text|Predecessor
ARMCD|Planned Arm Code|text|Predecessor
ACTARM|Description of Actual Arm|text|Predecessor
ACTARMCD|Actual Arm Code|text|Predecessor
ARMNRS|Reason Arm and/or Actual Arm is Null|text|Predecessor
TRT01P|Planned Treatment for Period 01|text|Derived
TRT01A|Actual Treatment for Period 01|text|Derived
ENRLFL|Enrolled Population Flag|text|Derived
ITTFL|Intent-To-Treat Population Flag|text|Derived
SAFFL|Safety Population Flag|text|Derived
COMPLFL|Completers Population Flag|text|Derived
TRTSDT|Date of First Exposure to Treatment|sasdate|Derived
TRTEDT|Date of Last Exposure to Treatment|sasdate|Derived
NDOSES|Number of MSC Doses Given|integer|Derived
TRANSDT|Date of Allogeneic HSCT|sasdate|Derived
PGFTYPE|Type of Poor Graft Function|text|Derived
WEIGHTBL|Baseline Weight (kg)|float|Derived
KPSBL|Baseline Karnofsky Performance Status|integer|Derived
RANDDT|Date of Enrolment|sasdate|Derived
EOSSTT|End of Study Status|text|Derived
EOSDT|End of Study Date|sasdate|Derived
DTHFL|Subject Death Flag|text|Predecessor
DTHDT|Date of Death|sasdate|Derived
PROTVERS|Protocol Version of Derivations|text|Assigned""", AGEU=AGEU, SEX=SEX, ARMNRS=ARMNRS, COUNTRY=COUNTRY, ENRLFL=NY,
        ITTFL=NY, SAFFL=NY, COMPLFL=NY, DTHFL=NY, EOSSTT=EOSSTT),
    _ds("ADTTE", "Time-to-Event Analysis Dataset", "BASIC DATA STRUCTURE", "One record per subject per parameter",
        "STUDYID USUBJID PARAMCD", SUBJECT + """
PARAMCD|Parameter Code|text|Assigned
PARAM|Parameter|text|Assigned
STARTDT|Time-to-Event Origin Date for Subject|sasdate|Derived
ADT|Analysis Date|sasdate|Derived
AVAL|Analysis Value|float|Derived
CNSR|Censor|integer|Derived
EVNTDESC|Event or Censoring Description|text|Derived
CNSDTDSC|Censor Date Description|text|Derived
CMPEVFL|Competing Event Flag|text|Derived
DELENTRY|Delayed Entry Time (days)|float|Derived
ORIGIN|Time Origin|text|Assigned
ENRLFL|Enrolled Population Flag|text|Predecessor""" + SOURCE, PARAMCD=PARAMCD_TTE, CMPEVFL=NY, ENRLFL=NY),
    _ds("ADRS", "Hemogram Response Analysis Dataset", "BASIC DATA STRUCTURE", "One record per subject per parameter",
        "STUDYID USUBJID PARAMCD", SUBJECT + """
PARAMCD|Parameter Code|text|Assigned
PARAM|Parameter|text|Assigned
AVALC|Analysis Value (C)|text|Derived
ADT|Analysis Date|sasdate|Derived
ADY|Analysis Relative Day|integer|Derived
REASON|Reason for NR or Not Evaluable|text|Derived
ANL01FL|Analysis Flag 01 (in the rate)|text|Derived""" + SOURCE, PARAMCD=PARAMCD_RS, AVALC=RESP, ANL01FL=NY),
    _ds("ADAE", "Adverse Event Analysis Dataset", "OCCURRENCE DATA STRUCTURE", "One record per adverse event",
        "STUDYID USUBJID AESEQ", SUBJECT + """
AESEQ|Sequence Number|integer|Predecessor
AETERM|Reported Term for the Adverse Event|text|Predecessor
AEDECOD|Dictionary-Derived Term|text|Predecessor
AECAT|Category for Adverse Event|text|Predecessor
AESER|Serious Event|text|Predecessor
AEREL|Causality|text|Predecessor
AEOUT|Outcome of Adverse Event|text|Predecessor
AETOXGR|Standard Toxicity Grade|text|Predecessor
ATOXGRN|Analysis Toxicity Grade (N)|integer|Derived
ASTDT|Analysis Start Date|sasdate|Derived
AENDT|Analysis End Date|sasdate|Derived
ASTDY|Analysis Start Relative Day|integer|Derived
TRTEMFL|Treatment Emergent Analysis Flag|text|Derived
SAFFL|Safety Population Flag|text|Predecessor""" + SOURCE, AESER=NY, TRTEMFL=NY, SAFFL=NY),
)}
