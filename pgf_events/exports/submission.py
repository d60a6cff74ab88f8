"""``pgf export submission DIR``: one folder a sponsor can hand over.

Layout (the eCTD m5 convention): ``DIR/tabulations/sdtm/`` and ``DIR/analysis/adam/`` each hold
Dataset-JSON, XPT and define.xml; ``DIR/reviewers-guide.md`` is the stub of the study data reviewer's
guide, listing the sponsor choices and the known conformance notes a reviewer will meet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgf_events.exports import adam, sdtm
from pgf_events.exports.formats import Files
from pgf_events.exports.package import write_package

NOTES = """\
## Known conformance notes

1. **AEDECOD** repeats the verbatim term in upper case: the engine does not code to MedDRA, so
   AEBODSYS/AEHLT/AELLT are not provided (CORE rules on MedDRA coding will report them).
2. **Infection episodes in AE** (AECAT = INFECTION) are recorded without seriousness, causality or
   outcome: AESER/AESDTH are derived from the grade (grade 5 = fatal = serious by death, else N),
   AEREL is the sponsor term NOT ASSESSED, AEOUT is FATAL (grade 5) or UNKNOWN, AEACN UNKNOWN.
3. **AEOUT** for adverse events recorded as free text before CDISC terms were enforced is mapped to
   the OUT codelist by keyword (recovered, recovering, not recovered, sequelae, fatal); an outcome
   left empty is FATAL for grade 5, RECOVERED/RESOLVED with an end date, else UNKNOWN.
4. **EXDOSU** `10^6 cells/kg` is a sponsor extension of the UNIT codelist (declared
   def:ExtendedValue="Yes" in define.xml); PRDOSU uses the CDISC term `U`.
5. **LB reference ranges** are the adult reference intervals of WS/T 405-2012 (haemoglobin by sex),
   not the sites' laboratory ranges, which are not collected. LBORRES/LBORRESU are the value as
   entered when the record kept the entered text (e.g. haemoglobin in g/dL), else the stored value.
6. **Baseline flag**: LBLOBXFL/VSLOBXFL (SDTMIG 3.4) mark the last value on or before the first
   infusion date (no time of day is collected, so a same-day sample counts as pre-dose).
7. **Visits**: the protocol's planned visits are screening and the four weekly infusions (TV); every
   other day with data is an unscheduled visit numbered after the preceding planned visit (2.001,
   ...). EPOCH: SCREENING before D1, TREATMENT from D1 until 7 days after the last infusion, FOLLOW-UP.
8. **Custom domain XG** (GVHD assessments): MAGIC acute staging inputs and NIH chronic organ scores
   have no SDTMIG domain; XG is a sponsor-defined findings domain (def:IsNonStandard="Yes").
   Karnofsky status is in RS (clinical classification) with the QRS codes KPS0101/KPS01.
9. **Disposition**: an end-of-participation record (DSSCAT = STUDY PARTICIPATION) exists for screen
   failures, deaths, and patients followed up to the protocol horizon (COMPLETED); a patient still
   in follow-up has none yet. DSSCAT is a sponsor-extended codelist.
10. **XPT text is ASCII** (SAS XPORT v5): symbols are spelled out (µ -> u), accents dropped and other
   non-ASCII characters replaced by `?`; Dataset-JSON keeps the UTF-8 text as recorded.
11. **ADaM dates** are numeric SAS dates (DATE9.) in XPT and ISO dates with targetDataType integer in
   Dataset-JSON. ADTTE's DELENTRY (delayed entry) and CMPEVFL (competing event), ADRS's REASON are
   sponsor variables; SRCDOM/SRCVAR/SRCSEQ name the SDTM record, PGFREF the pgf events.
12. **Not checked offline**: CDISC CT membership of every term against the current CT package, MedDRA
   and WHODrug dictionary rules, the FDA Technical Conformance Guide business rules and the full
   CDISC CORE rule set (they need the CDISC Library), and define.xml stylesheet rendering.
"""


def guide(trial: str, protocol_version: str, as_of: datetime | None, counts: dict[str, dict[str, int]]) -> str:
    lines = [f"# Study data reviewer's guide (stub): {trial}", "",
             f"Written by pgf-events on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; data as recorded up to "
             f"{as_of.isoformat() if as_of else 'the time of export'}; derivations under protocol {protocol_version}.",
             "", "## Datasets", ""]
    for part, folder in (("SDTM", "tabulations/sdtm"), ("ADaM", "analysis/adam")):
        lines.append(f"- {part} ({folder}/): " + ", ".join(f"{n} {c}" for n, c in counts[part].items()))
    lines += ["", "Each dataset is given as Dataset-JSON 1.1 (`.json`) and SAS XPORT v5 (`.xpt`), described by the "
              "folder's define.xml 2.1.", "", NOTES]
    return "\n".join(lines)


def write_submission(app: Any, directory: Path, as_of: datetime | None = None) -> dict[str, dict[str, int]]:
    trial = app.protocol.trial
    rows, subjects = sdtm.build_sdtm(app, as_of)
    analysis = adam.build_adam(subjects)
    counts = {
        "SDTM": write_package(directory / "tabulations" / "sdtm", sdtm.DATASETS, rows, trial=trial,
                              standard="SDTMIG", as_of=as_of),
        "ADaM": write_package(directory / "analysis" / "adam", adam.DATASETS, analysis, trial=trial,
                              standard="ADaMIG", as_of=as_of),
    }
    with Files(directory) as files, files.open("reviewers-guide.md") as f:
        f.write(guide(trial, app.protocol.version, as_of, counts))
    return counts
