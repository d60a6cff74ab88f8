"""The registry of record kinds: everything the rest of the program knows about a kind, in one entry.

A kind ties a value class (whose fields carry parse, unit, range and help) to the event that
stores it, the aggregate command that checks its rules, its title, its export mappings and where
it sorts among same-day records. The CLI's ``pgf record`` options, ``pgf import``, the ODM
metadata, the SDTM findings, the history labels and the demo's ordering are all generated from
:data:`KINDS`; ``tests/domain/test_registry.py`` checks that every entry is complete and consistent.

Adding a kind: a value class in :mod:`values`, an event class on :class:`Patient`, an entry here
(and its tests). Stored names (the event topic, the ``pgf.<kind>`` transcoding) are data: never
rename them (:mod:`pgf_events.topics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from pgf_events.domain import values as vo
from pgf_events.domain.entries import CORRECTION, SIGN, VOID
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.patient import Patient


@attrs.frozen
class Finding:
    """One SDTM findings test fed by a field of a kind (``LBTESTCD`` ``NEUT`` from ``lab.anc``)."""

    field: str
    code: str
    test: str
    category: str
    unit: str  # as SDTM writes it (ASCII); "" for a unitless result
    domain: str = "LB"  # the findings dataset: LB, VS, RS, XG
    # Reference range in ``unit`` by sex ("" for both): ((sex, low, high), ...); empty when none applies.
    normal: tuple[tuple[str, float, float], ...] = ()

    def range_for(self, sex: str) -> tuple[float, float] | None:
        return next(((lo, hi) for s, lo, hi in self.normal if s in ("", sex)), None)


@attrs.frozen
class Kind:
    name: str  # the kind as typed: ``pgf record NAME``, ``{"record": NAME}``, ``pgf.NAME`` transcoding
    record: type[vo.Record]
    event: Any  # the Patient event class: a Patient.Recorded subclass (Patient.Registered for register)
    title: str  # ODM StudyEventDef/FormDef name, history and report labels
    summary: str  # one line of ``pgf record --help``
    example: str
    day_rank: int  # order among records of the same clinical day (demo; a transfusion follows its count)
    # The Patient method recording this kind; None: Patient.record. Every kind's rules are the entry
    # rules (domain/rules/entry.py), so only the registration, which creates the stream, has its own.
    command: str | None = None
    sdtm: tuple[str, ...] = ()  # the SDTM datasets the kind feeds
    findings: tuple[Finding, ...] = ()  # for a findings dataset (LB): one test per field


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


KINDS: dict[str, Kind] = _kinds(
    Kind("register", vo.Registration, Patient.Registered, "Registration",
         "Register a new patient (the first event of their stream).",
         "pgf record register S001 --site PKU --birth-date 1980-02-03 --sex F --weight-kg 61 "
         "--transplant-date 2025-01-10", day_rank=0, command="register", sdtm=("DM", "MH", "VS"),
         findings=(Finding("weight_kg", "WEIGHT", "Weight", "", "kg", domain="VS"),)),
    Kind("screen", vo.Screening, Patient.Screened, "Screening",
         "Record a screening assessment (KPS, prognosis, typed criteria).",
         "pgf record screen S001 --date 2025-02-20 --kps 80 --expected-survival-months 12 "
         "--criterion IN1=yes --criterion EX6=no", day_rank=2, sdtm=("IE", "DS", "RS"),
         findings=(Finding("kps", "KPS0101", "KPS01-Karnofsky Performance Status", "KARNOFSKY PERFORMANCE STATUS",
                           "", domain="RS"),)),
    Kind("consent", vo.Consent, Patient.Consented, "Informed consent",
         "Record informed consent (criterion IN6).",
         "pgf record consent S001 --date 2025-02-18 --version 2.1", day_rank=1, sdtm=("DM", "IE", "DS")),
    Kind("enrol", vo.Enrolment, Patient.Enrolled, "Enrolment",
         "Enrol an eligible, consented patient.",
         "pgf record enrol S001 --date 2025-02-24 --pgf-type secondary --pgf-diagnosis-date 2025-02-15",
         day_rank=3, sdtm=("DM", "DS", "MH")),
    Kind("infusion", vo.Infusion, Patient.Infused, "MSC infusion",
         "Record an MSC infusion (at most 4 doses, at least 5 days apart).",
         "pgf record infusion S001 --date 2025-02-25 --cells 6.1e7 --weight-kg 61 --lot UC-2025-014",
         day_rank=6, sdtm=("DM", "EX", "DS", "VS"),
         findings=(Finding("weight_kg", "WEIGHT", "Weight", "", "kg", domain="VS"),)),
    Kind("transfusion", vo.Transfusion, Patient.Transfused, "Transfusion",
         "Record a red-cell or platelet transfusion.",
         "pgf record transfusion S001 --date 2025-03-02 --product platelets --units 1", day_rank=5, sdtm=("PR",)),
    Kind("lab", vo.LabPanel, Patient.LabResulted, "Laboratory",
         "Record a blood count / chemistry result (at least one value).",
         "pgf record lab S001 --date 2025-03-01 --anc 0.4 --plt 18 --hb 7.2 --hb-unit g/dL", day_rank=4,
         sdtm=("LB",), findings=(
             # Adult reference intervals of WS/T 405-2012 (the sites' labs' ranges are not collected).
             Finding("anc", "NEUT", "Neutrophils", "HEMATOLOGY", "10^9/L", normal=(("", 1.8, 6.3),)),
             Finding("plt", "PLAT", "Platelets", "HEMATOLOGY", "10^9/L", normal=(("", 125, 350),)),
             Finding("hb", "HGB", "Hemoglobin", "HEMATOLOGY", "g/L", normal=(("M", 130, 175), ("F", 115, 150))),
             Finding("wbc", "WBC", "Leukocytes", "HEMATOLOGY", "10^9/L", normal=(("", 3.5, 9.5),)),
             Finding("bilirubin", "BILI", "Bilirubin", "CHEMISTRY", "umol/L", normal=(("", 3.4, 20.5),)),
         )),
    Kind("vitals", vo.VitalSigns, Patient.VitalSignsRecorded, "Vital signs",
         "Record vital signs: temperature, pulse, blood pressure, SpO2 (e.g. around an infusion).",
         "pgf record vitals S001 --date 2025-02-25 --timepoint '15 min post-infusion' --temperature 38.4 "
         "--pulse 112 --systolic 96 --diastolic 58 --spo2 93", day_rank=7, sdtm=("VS",), findings=(
             Finding("temperature", "TEMP", "Temperature", "", "C", domain="VS"),
             Finding("pulse", "PULSE", "Pulse Rate", "", "beats/min", domain="VS"),
             Finding("systolic", "SYSBP", "Systolic Blood Pressure", "", "mmHg", domain="VS"),
             Finding("diastolic", "DIABP", "Diastolic Blood Pressure", "", "mmHg", domain="VS"),
             Finding("spo2", "OXYSAT", "Oxygen Saturation", "", "%", domain="VS"),
         )),
    Kind("ae", vo.AdverseEvent, Patient.AdverseEventReported, "Adverse event",
         "Report an adverse event (CTCAE v5 grade; seriousness criteria start the SAE clock).",
         "pgf record ae S001 --onset 2025-03-04 --term 'febrile neutropenia' --grade 3 "
         "--serious hospitalisation --related unlikely --aware 2025-03-04T09:30", day_rank=10, sdtm=("AE",)),
    Kind("infection", vo.Infection, Patient.InfectionDiagnosed, "Infection",
         "Record an infection episode.",
         "pgf record infection S001 --onset 2025-03-10 --site lung --grade 3 --organism 'Aspergillus'",
         day_rank=9, sdtm=("AE", "MB")),
    Kind("gvhd", vo.GvhdAssessment, Patient.GvhdAssessed, "GVHD assessment",
         "Record a GVHD assessment: acute raw measures (MAGIC staging is derived) or chronic organ scores.",
         "pgf record gvhd S001 --date 2025-03-12 --skin-bsa 30 --bilirubin 25 \\\n"
         "      --bilirubin-unit umol/L --upper-gi no --stool-ml 600\n"
         "  pgf record gvhd S001 --date 2025-09-01 --chronic --organ skin=1 --organ mouth=2", day_rank=8, sdtm=("XG",),
         findings=(Finding("skin_bsa", "SKINBSA", "Skin Rash Body Surface Area", "ACUTE GVHD", "%", domain="XG"),
                   Finding("bullae", "BULLAE", "Bullae or Desquamation", "ACUTE GVHD", "", domain="XG"),
                   Finding("bilirubin", "BILI", "Total Bilirubin", "ACUTE GVHD", "umol/L", domain="XG"),
                   Finding("upper_gi", "UGI", "Persistent Upper GI Symptoms", "ACUTE GVHD", "", domain="XG"),
                   Finding("stool_ml", "STOOLVOL", "Diarrhea Volume", "ACUTE GVHD", "mL/day", domain="XG"),
                   Finding("severe_pain", "ABDPAIN", "Severe Abdominal Pain or Ileus", "ACUTE GVHD", "",
                           domain="XG"))),
    Kind("relapse", vo.Relapse, Patient.RelapseDiagnosed, "Relapse",
         "Record a relapse of the underlying disease.",
         "pgf record relapse S001 --date 2025-10-02", day_rank=11, sdtm=("RS",)),
    Kind("contact", vo.Contact, Patient.ContactRecorded, "Contact",
         "Record a follow-up contact: last known alive, and disease status.",
         "pgf record contact S001 --date 2026-01-10 --status alive --disease free", day_rank=12, sdtm=("RS", "SV")),
    Kind("death", vo.Death, Patient.Died, "Death",
         "Record the patient's death (nothing clinical can be dated after it).",
         "pgf record death S001 --date 2025-08-14 --cause 'relapse'", day_rank=14, sdtm=("DM", "DS", "DD")),
    Kind("withdraw", vo.Withdrawal, Patient.Withdrawn, "Withdrawal",
         "Withdraw the patient from treatment (no further infusions).",
         "pgf record withdraw S001 --date 2025-03-20 --reason 'consent withdrawn'", day_rank=13,
         sdtm=("DS",)),
)

# Events that are not records of a kind: they supersede or sign records.
CHANGE_EVENTS: dict[type, str] = {Patient.Corrected: CORRECTION, Patient.Voided: VOID, Patient.Signed: SIGN}
# The kind (or "correct", "void", "sign") each Patient event class carries; history and exports read by it.
EVENT_KINDS: dict[type, str] = {**{k.event: k.name for k in KINDS.values()}, **CHANGE_EVENTS}
# Same-day order of everything a batch can hold: the kinds by rank, then corrections and voids.
DAY_ORDER: dict[str, int] = {
    **{k.name: k.day_rank for k in KINDS.values()}, CORRECTION: len(KINDS), VOID: len(KINDS) + 1,
}


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValidationError(f"unknown record kind {name!r}; kinds are {', '.join(KINDS)}") from None


def record_class(name: str) -> type[vo.Record]:
    return kind(name).record


def build_record(name: str, raw: Mapping[str, Any]) -> vo.Record:
    """Parse and validate the fields of a record of kind ``name`` (CLI options or an import line)."""
    return kind(name).record.from_input(raw)


def unit_of(record: type[vo.Record], field: str) -> str | None:
    return attrs.fields_dict(record)[field].metadata.get("unit")
