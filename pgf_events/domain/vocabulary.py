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
CHRONIC_ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")
PRODUCTS = ("rbc", "platelets")
SEXES = ("M", "F")
PGF_TYPES = ("primary", "secondary")
CONTACT_STATUSES = ("alive",)
DISEASE_STATUSES = ("free", "relapsed")

# Every unit a stored value may carry (a field's ``unit`` metadata), with its CDISC ODM OID.
UNITS = {
    "10^9/L": "MU.E9PERL", "g/L": "MU.GPERL", "µmol/L": "MU.UMOLPERL", "kg": "MU.KG", "cells": "MU.CELLS",
    "%": "MU.PCT", "mL/day": "MU.MLPERDAY", "months": "MU.MONTHS",
}
