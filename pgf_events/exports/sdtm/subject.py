"""One subject's SDTM context: identifiers, reference dates, study days, epochs and visits.

- ``USUBJID`` = ``STUDYID-SUBJID``; ``RFSTDTC`` = the first MSC infusion; ``--DY`` counts from it
  (day 1, no day 0), as SDTMIG defines.
- Epochs (TE/TA): SCREENING before the first infusion, TREATMENT from it to the day before the
  follow-up starts (7 days after the last infusion, the dosing interval), FOLLOW-UP after. A patient
  never infused is in SCREENING throughout.
- Visits (TV/SV): VISITNUM 1 SCREENING (the first screening), 2-5 MSC DOSE 1-4 (each infusion day);
  every other day with data is an unscheduled visit numbered after the last planned visit before it
  (2.001, 2.002, ...; 0.001 before screening), VISIT ``UNSCHEDULED 2.001``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.domain.patient import Patient
from pgf_events.protocol import Protocol

TREATMENT_TAIL_DAYS = 7


def study_day(day: date | None, reference: date | None) -> int | None:
    if day is None or reference is None:
        return None
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


def planned_visits(params: Protocol) -> list[tuple[float, str, str]]:
    """(VISITNUM, VISIT, EPOCH) of the planned visits (TV)."""
    doses = [(1.0 + n, f"MSC DOSE {n}", "TREATMENT") for n in range(1, params.planned_doses + 1)]
    return [(1.0, "SCREENING", "SCREENING"), *doses]


class Subject:
    """Rows one patient contributes, with the context every domain needs."""

    def __init__(self, trial: str, patient: Patient, params: Protocol):
        self.trial, self.p, self.params = trial, patient, params
        self.usubjid = f"{trial}-{patient.subject}"
        self.infusions = sorted(patient.active(vo.Infusion), key=lambda vr: (vr[1].date, vr[0]))
        self.rfstdtc = self.infusions[0][1].date if self.infusions else None
        self.rfxendtc = self.infusions[-1][1].date if self.infusions else None
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.visits = self._visits()

    # ----------------------------------------------------------------------------- time axes
    def dy(self, day: date | None) -> int | None:
        return study_day(day, self.rfstdtc)

    @property
    def follow_up_start(self) -> date | None:
        return self.rfxendtc + timedelta(days=TREATMENT_TAIL_DAYS) if self.rfxendtc else None

    def epoch(self, day: date | None) -> str | None:
        if day is None:
            return None
        if self.rfstdtc is None or day < self.rfstdtc:
            return "SCREENING"
        assert self.follow_up_start is not None
        return "TREATMENT" if day < self.follow_up_start else "FOLLOW-UP"

    def _visits(self) -> dict[date, tuple[float, str]]:
        planned: dict[date, tuple[float, str]] = {}
        screenings = sorted(s.date for _, s in self.p.active(vo.Screening))
        if screenings:
            planned[screenings[0]] = (1.0, "SCREENING")
        for n, (_, infusion) in enumerate(self.infusions, start=1):
            planned[infusion.date] = (1.0 + n, f"MSC DOSE {n}")
        days = {r.clinical_date for _, r in self.p.clinical_records()}
        days.add(self.p.registration.clinical_date)  # the registration weight (VS) is dated by it
        out: dict[date, tuple[float, str]] = {}
        base, n = 0.0, 0
        for day in sorted(days | set(planned)):
            if day in planned:
                out[day] = planned[day]
                base, n = planned[day][0], 0
                continue
            n += 1
            number = round(base + n / 1000, 3)
            out[day] = (number, f"UNSCHEDULED {number:.3f}")
        return out

    def visit(self, day: date | None) -> dict[str, Any]:
        if day is None:
            return {"EPOCH": None}
        number, name = self.visits.get(day, (None, None))
        return {"VISITNUM": number, "VISIT": name, "EPOCH": self.epoch(day)}

    # ----------------------------------------------------------------------------- rows
    def add(self, domain: str, **values: Any) -> dict[str, Any]:
        rows = self.rows.setdefault(domain, [])
        row = {"STUDYID": self.trial, "DOMAIN": domain, "USUBJID": self.usubjid, f"{domain}SEQ": len(rows) + 1,
               **values}
        rows.append(row)
        return row

    def ref(self, version: int) -> str:
        return self.p.ref(version)
