"""``pgf record <kind> SUBJECT [options]``: one command per record kind, all through one path.

Options map to record fields by name (``--weight-kg`` -> ``weight_kg``), exactly like the keys of
a ``pgf import`` line, and go through the same parsing and rules; so a mistake gets the same
message on the command line and in a batch.
"""

from __future__ import annotations

from typing import Any

import click

from pgf_events.cli._output import JSON_OPTION, emit_json

DATE = "YYYY-MM-DD"

# kind -> (one-line help, example, [(option, help, extra click kwargs)])
SPECS: dict[str, tuple[str, str, list[tuple[str, str, dict[str, Any]]]]] = {
    "register": (
        "Register a new patient (the first event of their stream).",
        "pgf record register S001 --site PKU --birth-date 1980-02-03 --sex F --weight-kg 61 --transplant-date 2025-01-10",
        [
            ("--site", "Study site code.", {"required": True}),
            ("--birth-date", f"Birth date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--sex", "M or F.", {"required": True, "metavar": "M|F"}),
            ("--weight-kg", "Body weight in kg (20–250).", {"required": True, "metavar": "KG"}),
            ("--transplant-date", f"Allogeneic HSCT date, day 0 ({DATE}).", {"required": True, "metavar": DATE}),
            ("--donor-type", "Donor type, e.g. haploidentical, matched-sibling, unrelated.", {}),
            ("--diagnosis", "Underlying disease, e.g. AML.", {}),
            ("--date", f"Registration date (default: today, UTC) ({DATE}).", {"metavar": DATE}),
        ],
    ),
    "screen": (
        "Record a screening assessment (KPS, prognosis, typed criteria).",
        "pgf record screen S001 --date 2025-02-20 --kps 80 --expected-survival-months 12 "
        "--criterion IN1=yes --criterion EX6=no",
        [
            ("--date", f"Screening date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--kps", "Karnofsky performance status, 0–100 in steps of 10 (IN3 needs > 60).", {"metavar": "N"}),
            ("--expected-survival-months", "Expected survival in months (IN3 needs > 3).", {"metavar": "N"}),
            ("--criterion", "CODE=yes|no for IN1, IN4, IN5, EX1–EX8 (yes = the statement is true). Repeatable.",
             {"multiple": True, "metavar": "CODE=yes|no"}),
        ],
    ),
    "consent": (
        "Record informed consent (criterion IN6).",
        "pgf record consent S001 --date 2025-02-18 --version 2.1",
        [
            ("--date", f"Date consent was signed ({DATE}).", {"required": True, "metavar": DATE}),
            ("--version", "Consent form version.", {}),
        ],
    ),
    "enrol": (
        "Enrol an eligible, consented patient.",
        "pgf record enrol S001 --date 2025-02-24 --pgf-type secondary --pgf-diagnosis-date 2025-02-15",
        [
            ("--date", f"Enrolment date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--pgf-type", "primary or secondary poor graft function.", {"metavar": "primary|secondary"}),
            ("--pgf-diagnosis-date", f"Date PGF was diagnosed ({DATE}).", {"metavar": DATE}),
        ],
    ),
    "infusion": (
        "Record an MSC infusion (at most 4 doses, at least 5 days apart).",
        "pgf record infusion S001 --date 2025-02-25 --cells 6.1e7 --weight-kg 61 --lot UC-2025-014",
        [
            ("--date", f"Infusion date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--cells", "Total viable cells infused, e.g. 6.5e7.", {"required": True, "metavar": "N"}),
            ("--weight-kg", "Body weight used for this dose, kg.", {"required": True, "metavar": "KG"}),
            ("--lot", "MSC product lot.", {}),
        ],
    ),
    "transfusion": (
        "Record a red-cell or platelet transfusion.",
        "pgf record transfusion S001 --date 2025-03-02 --product platelets --units 1",
        [
            ("--date", f"Transfusion date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--product", "rbc or platelets.", {"required": True, "metavar": "rbc|platelets"}),
            ("--units", "Units given (default 1).", {"metavar": "N"}),
        ],
    ),
    "lab": (
        "Record a blood count / chemistry result (at least one value).",
        "pgf record lab S001 --date 2025-03-01 --anc 0.4 --plt 18 --hb 7.2 --hb-unit g/dL",
        [
            ("--date", f"Sample date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--anc", "Absolute neutrophil count, 10^9/L (0–100).", {"metavar": "X"}),
            ("--plt", "Platelets, 10^9/L (0–2000).", {"metavar": "X"}),
            ("--hb", "Haemoglobin, g/L (20–250) unless --hb-unit g/dL.", {"metavar": "X"}),
            ("--hb-unit", "g/L (default) or g/dL (converted x10).", {"metavar": "g/L|g/dL"}),
            ("--wbc", "White cells, 10^9/L.", {"metavar": "X"}),
            ("--bilirubin", "Total bilirubin, µmol/L unless --bilirubin-unit mg/dL.", {"metavar": "X"}),
            ("--bilirubin-unit", "µmol/L (default) or mg/dL (converted x17.1).", {"metavar": "UNIT"}),
        ],
    ),
    "ae": (
        "Report an adverse event (CTCAE v5 grade; seriousness criteria start the SAE clock).",
        "pgf record ae S001 --onset 2025-03-04 --term 'febrile neutropenia' --grade 3 "
        "--serious hospitalisation --related unlikely --aware 2025-03-04T09:30",
        [
            ("--onset", f"Onset date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--term", "Adverse event term (CTCAE/MedDRA).", {"required": True}),
            ("--grade", "CTCAE v5 grade 1–5.", {"required": True, "metavar": "1-5"}),
            ("--serious", "Comma-separated: death, life-threatening, hospitalisation, disability, "
             "congenital-anomaly, important-medical-event.", {"metavar": "CRITERIA"}),
            ("--related", "Relatedness to MSC: not, unlikely, possible, probable, definite.", {"metavar": "LEVEL"}),
            ("--aware", "When the site became aware (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC unless offset).",
             {"metavar": "DATE/TIME"}),
            ("--end", f"Resolution date ({DATE}).", {"metavar": DATE}),
            ("--outcome", "Outcome, e.g. recovered, recovering, fatal.", {}),
        ],
    ),
    "infection": (
        "Record an infection episode.",
        "pgf record infection S001 --onset 2025-03-10 --site lung --grade 3 --organism 'Aspergillus'",
        [
            ("--onset", f"Onset date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--site", "Site of infection, e.g. lung, blood, urinary tract.", {"required": True}),
            ("--grade", "CTCAE v5 grade 1–5.", {"required": True, "metavar": "1-5"}),
            ("--organism", "Organism, if known.", {}),
        ],
    ),
    "gvhd": (
        "Record a GVHD assessment: acute raw measures (MAGIC staging is derived) or chronic organ scores.",
        "pgf record gvhd S001 --date 2025-03-12 --skin-bsa 30 --bilirubin 25 --upper-gi no --stool-ml 600\n"
        "  pgf record gvhd S001 --date 2025-09-01 --chronic --organ skin=1 --organ mouth=2",
        [
            ("--date", f"Assessment date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--skin-bsa", "Body surface with active erythema, % (0–100).", {"metavar": "PCT"}),
            ("--bullae", "Bullae / desquamation over 5% BSA.", {"is_flag": True, "default": None}),
            ("--bilirubin", "Total bilirubin, µmol/L unless --bilirubin-unit mg/dL.", {"metavar": "X"}),
            ("--bilirubin-unit", "µmol/L (default) or mg/dL.", {"metavar": "UNIT"}),
            ("--upper-gi", "Persistent nausea, vomiting or anorexia: yes or no.", {"metavar": "yes|no"}),
            ("--stool-ml", "Stool volume, mL/day.", {"metavar": "N"}),
            ("--severe-pain", "Severe abdominal pain, ileus or grossly bloody stool.", {"is_flag": True, "default": None}),
            ("--chronic", "A chronic GVHD assessment (NIH organ scores).", {"is_flag": True, "default": None}),
            ("--organ", "NAME=SCORE (0–3) for skin, mouth, eyes, gi, liver, lungs, joints, genital. Repeatable.",
             {"multiple": True, "metavar": "NAME=SCORE"}),
        ],
    ),
    "relapse": (
        "Record a relapse of the underlying disease.",
        "pgf record relapse S001 --date 2025-10-02",
        [("--date", f"Date relapse was diagnosed ({DATE}).", {"required": True, "metavar": DATE})],
    ),
    "contact": (
        "Record a follow-up contact: last known alive, and disease status.",
        "pgf record contact S001 --date 2026-01-10 --status alive --disease free",
        [
            ("--date", f"Contact date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--status", "alive.", {"required": True, "metavar": "alive"}),
            ("--disease", "free or relapsed (the disease assessment at this contact).", {"metavar": "free|relapsed"}),
        ],
    ),
    "death": (
        "Record the patient's death (nothing clinical can be dated after it).",
        "pgf record death S001 --date 2025-08-14 --cause 'relapse'",
        [
            ("--date", f"Date of death ({DATE}).", {"required": True, "metavar": DATE}),
            ("--cause", "Cause of death.", {}),
        ],
    ),
    "withdraw": (
        "Withdraw the patient from treatment (no further infusions).",
        "pgf record withdraw S001 --date 2025-03-20 --reason 'consent withdrawn'",
        [
            ("--date", f"Withdrawal date ({DATE}).", {"required": True, "metavar": DATE}),
            ("--reason", "Why the patient was withdrawn.", {"required": True}),
        ],
    ),
}


@click.group()
def record() -> None:
    """Record a clinical event for a patient (prints its reference SUBJECT#N).

    \b
    Example:
      pgf record lab S001 --date 2025-03-01 --anc 0.4 --plt 18
    """


def _make_command(kind: str) -> click.Command:
    help_text, example, options = SPECS[kind]

    @click.pass_obj
    def callback(state: Any, subject: str, source: str | None, deviation: str | None, key: str | None,
                 fmt: str | None, **fields: Any) -> None:
        fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()}
        fields = {k: v for k, v in fields.items() if v is not None and v != []}
        result = state.app().record(kind, subject, fields, user=state.user, source=source, deviation=deviation,
                                    key=key)
        if fmt == "json":
            emit_json(result.as_json())
        else:
            click.echo(result.ref)

    command = click.Command(
        name=kind, callback=callback,
        help=f"{help_text}\n\n\b\nExample:\n  {example}",
        short_help=help_text,
        params=[click.Argument(["subject"])],
    )
    for name, help_, extra in options:
        command.params.append(click.Option([name], help=help_, **extra))
    command.params.append(click.Option(["--source"], help="Source document reference (e.g. lab report id).",
                                       metavar="TEXT"))
    command.params.append(click.Option(
        ["--deviation"], metavar="WHY",
        help="Acknowledge the protocol deviation this record is (e.g. a dose outside its window or tolerance), "
             "with why; stored with the event and listed by 'pgf report deviations'."))
    command.params.append(click.Option(
        ["--key"], metavar="TEXT",
        help="Idempotency key: a retry with the same key (e.g. after a crash) prints the original reference "
             "and writes nothing."))
    command.params.append(click.Option(list(JSON_OPTION[0]), **JSON_OPTION[1]))
    return command


for _kind in SPECS:
    record.add_command(_make_command(_kind))
