"""The trial's controlled vocabularies and unit factors, defined once.

Value classes parse against these, exports map them (SDTM flags, ODM items) and the demo draws
from them; a second copy anywhere else is a defect (tests/domain/test_registry.py looks).
"""

from __future__ import annotations

HB_G_PER_L_PER_G_PER_DL = 10.0
BILIRUBIN_UMOL_PER_MG_DL = 17.1
HB_UNITS = ("g/L", "g/dL")
BILIRUBIN_UNITS = ("µmol/L", "umol/L", "mg/dL")

# Eligibility criteria typed at screening; the others are derived from other records.
TYPED_CRITERIA = ("IN1", "IN4", "IN5", "EX1", "EX2", "EX3", "EX4", "EX5", "EX6", "EX7", "EX8")
DERIVED_CRITERIA = {
    "IN2": "age at screening, from the birth date",
    "IN3": "--kps and --expected-survival-months",
    "IN6": "the consent record",
}
SERIOUSNESS = (
    "death", "life-threatening", "hospitalisation", "disability", "congenital-anomaly",
    "important-medical-event",
)
RELATEDNESS = ("not", "unlikely", "possible", "probable", "definite")
# CDISC controlled terminology: action taken with the study treatment (AEACN) and outcome (AEOUT).
# DOSE DELAYED is the sponsor extension for an MSC infusion postponed because of the event.
AE_ACTIONS = ("DOSE NOT CHANGED", "DRUG INTERRUPTED", "DRUG WITHDRAWN", "DOSE DELAYED", "NOT APPLICABLE", "UNKNOWN")
AE_OUTCOMES = ("RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
               "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN")
# Free-text outcomes written before the CDISC terms (stores keep them; reports show the term).
LEGACY_AE_OUTCOMES = {
    "recovered": "RECOVERED/RESOLVED", "resolved": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING", "resolving": "RECOVERING/RESOLVING",
    "not recovered": "NOT RECOVERED/NOT RESOLVED", "not resolved": "NOT RECOVERED/NOT RESOLVED",
    "ongoing": "NOT RECOVERED/NOT RESOLVED", "recovered with sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "sequelae": "RECOVERED/RESOLVED WITH SEQUELAE", "fatal": "FATAL", "death": "FATAL", "unknown": "UNKNOWN",
}


def ae_outcome_term(outcome: str | None) -> str | None:
    """The CDISC AEOUT term of a stored outcome: the term itself, or the term of an older free text
    (None when the text names no term: reports then show the text as recorded)."""
    if outcome is None or outcome in AE_OUTCOMES:
        return outcome
    return LEGACY_AE_OUTCOMES.get(" ".join(outcome.lower().split()))
CHRONIC_ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")
PRODUCTS = ("rbc", "platelets")
SEXES = ("M", "F")
PGF_TYPES = ("primary", "secondary")
CONTACT_STATUSES = ("alive",)
DISEASE_STATUSES = ("free", "relapsed")

# Every unit a stored value may carry (a field's ``unit`` metadata), with its CDISC ODM OID.
UNITS = {
    "10^9/L": "MU.E9PERL", "g/L": "MU.GPERL", "µmol/L": "MU.UMOLPERL", "kg": "MU.KG", "cells": "MU.CELLS",
    "%": "MU.PCT", "mL/day": "MU.MLPERDAY", "months": "MU.MONTHS", "°C": "MU.DEGC", "beats/min": "MU.BEATSPERMIN",
    "mmHg": "MU.MMHG",
}
