"""``pgf demo``: a synthetic, clinically plausible MSC-for-PGF cohort, recorded like a coordinator would.

The model (see docs/rules.md for the rules every record must pass; the tables it draws from are in
:mod:`pgf_events.demo_tables`):

* Calendar. Fixed, never today's date: transplants (day 0) are spread over 2024-01..2025-03, primary
  PGF is diagnosed on day +28..+45 and about half of secondary PGF later (day +40..+120), then
  registration, consent, screening, enrolment and MSC D1 follow within days. Follow-up runs ~1 year
  from D1 up to the data end (``demo_course.DATA_CUTOFF``), so every clinical date is in the past.
* Randomness. Every subject draws from its own ``random.Random(f"{seed}/{code}")``: one seed gives
  one cohort, event for event.
* Cohort. ``patients`` enrolled subjects ``S001``... plus ~15% screen failures ``SF01``... who are
  registered, consented and screened with one failing criterion (age 63, KPS 60, survival 3 months,
  EX1/EX6/EX7 = yes) and never enrolled.
* Clinical course after enrolment (counts, transfusions with their increments, infections, GVHD,
  adverse events, relapse, death, loss to follow-up): :mod:`pgf_events.demo_course`; each figure
  and its published source are in docs/demo.md.
* Dosing. 4 weekly doses of 1e6 cells/kg x that day's weight (±5% dose spread, ~5% ±15%
  deviations), mostly on target, some early/late within or outside the ±2-day window, a few missed
  doses, a few withdrawals after 1-2 doses.
* Data issues. A few transcription errors later corrected, and duplicate or misfiled entries
  voided, each with a reason (they exercise the audit trail; the effective data match the model).

Each patient's commands are sorted by clinical date and come together; an event's reference
``SUBJECT#N`` is its position among them, so corrections can name their targets up front. ``pgf demo``
records the whole cohort on ``pgf import``'s bulk path, in one transaction (``cli/demo.py``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from pgf_events import demo_course
from pgf_events.commands import Command
from pgf_events.demo_deviations import acknowledge_deviations
from pgf_events.demo_tables import (
    DIAGNOSES,
    DONORS,
    FIRST_TRANSPLANT,
    LAST_TRANSPLANT,
    SCREEN_FAILURE_SHARE,
    SCREEN_FAILURES,
    SITES,
    SOURCES,
    TYPED_OK,
    WITHDRAWAL_REASONS,
    Item,
    Subject,
)
from pgf_events.domain.kinds import DAY_ORDER


def _days(n: int) -> timedelta:
    return timedelta(days=n)


# ---------------------------------------------------------------------------------------- phases

def baseline(s: Subject) -> None:
    """Registration, consent, screening and (unless a screen failure) enrolment."""
    rng = s.rng
    secondary = rng.random() < 0.45
    # Primary PGF shows by day +28..+45; secondary PGF (after initial engraftment) often later.
    pgf_diagnosed = s.transplant + _days(rng.randint(40, 120) if secondary and rng.random() < 0.5
                                         else rng.randint(28, 45))
    registered = pgf_diagnosed + _days(rng.randint(0, 2))
    consented = registered + _days(rng.choice((0, 0, 1)))
    s.screen_day = consented + _days(rng.randint(0, 3))
    age, overrides = SCREEN_FAILURES[s.failure] if s.failure is not None else (rng.randint(19, 59), {})
    birth = s.screen_day - _days(round(365.25 * age) + rng.randint(20, 340))
    sex = "M" if rng.random() < 0.58 else "F"
    s.weight = round(min(95, max(45, rng.gauss(68, 10) if sex == "M" else rng.gauss(57, 8))) * 2) / 2
    s.diagnosis = s.pick(DIAGNOSES)
    s.add(registered, "register", site=rng.choice(SITES), birth_date=birth, sex=sex, weight_kg=s.weight,
          transplant_date=s.transplant, donor_type=s.pick(DONORS), diagnosis=s.diagnosis, date=registered)
    s.add(consented, "consent", date=consented, version="ICF v2.1")
    screening: dict[str, Any] = {"date": s.screen_day, "kps": rng.choice((70, 80, 80, 90)),
                 "expected_survival_months": rng.randint(6, 24), "criterion": dict(TYPED_OK)}
    screening.update({k: v for k, v in overrides.items() if k != "criterion"})
    screening["criterion"].update(overrides.get("criterion", {}))
    s.add(s.screen_day, "screen", **screening)
    if s.failure is None:
        enrolled = s.screen_day + _days(rng.randint(1, 4))
        s.d1 = enrolled + _days(rng.randint(0, 3))
        s.add(enrolled, "enrol", date=enrolled, pgf_type="secondary" if secondary else "primary",
              pgf_diagnosis_date=pgf_diagnosed)


def dosing(s: Subject) -> None:
    """Weekly MSC infusions anchored to D1, with realistic timing and dose variation."""
    rng = s.rng
    doses = s.withdraw_after or 4
    missed = {rng.randint(1, 3)} if doses == 4 and rng.random() < 0.08 else set()
    # A few clinics pull the whole schedule forward (doses 3-4 early); others drift day by day.
    pulled = rng.choice(((0, -1, -3, -4), (0, -2, -3, -5))) if rng.random() < 0.05 else None
    previous: date | None = None
    for k in range(doses):
        if k in missed:
            continue
        shift = pulled[k] if pulled else 0 if k == 0 else \
            rng.choices((0, -1, 1, -2, 2, -3, 3, 4), weights=(62, 8, 10, 4, 6, 3, 4, 3))[0]
        day = s.d1 + _days(7 * k + shift)
        if previous and (day - previous).days < 5:
            day = previous + _days(5)
        weight = round(s.weight * rng.uniform(0.98, 1.02), 1)
        factor = rng.choice((0.85, 1.15)) if rng.random() < 0.05 else rng.uniform(0.95, 1.05)
        cells = float(f"{1e6 * weight * factor:.3g}")
        lot = f"UCMSC-{day:%y%m}-{rng.randint(1, 40):02d}"
        s.add(day, "infusion", date=day, cells=cells, weight_kg=weight, lot=lot)
        previous = day
    if s.withdraw_after and previous:
        s.obs_end = previous + _days(rng.randint(2, 5))
        s.add(s.obs_end, "withdraw", date=s.obs_end, reason=rng.choice(WITHDRAWAL_REASONS))


def data_issues(s: Subject) -> None:
    """A few entry errors and their fixes, as a monitor would find them: corrections and voids."""
    rng = s.rng

    def later(item: Item, kind: str, reason: str, **fields: Any) -> None:
        s.items.append(Item(item.day + _days(rng.randint(3, 30)), kind, fields, target=item, reason=reason))

    lab_items = [i for i in s.items if i.kind == "lab"]
    typo = [i for i in lab_items if i.fields["anc"] < 1 and f"{i.fields['anc']:.2f}"[2] != f"{i.fields['anc']:.2f}"[3]]
    if typo and rng.random() < 0.12:  # 0.62 typed as 0.26
        item = rng.choice(typo)
        true = item.fields["anc"]
        item.fields["anc"] = float(f"0.{f'{true:.2f}'[:1:-1]}")
        later(item, "correct", "transcription error: digits transposed when copied from the LIS report", anc=true)
    infusions = [i for i in s.items if i.kind == "infusion"]
    if infusions and rng.random() < 0.05:
        item = rng.choice(infusions)
        true = item.fields["weight_kg"]
        item.fields["weight_kg"] = round(true + 10, 1)
        later(item, "correct", "weight copied from the wrong visit; infusion record shows the day's weight",
              weight_kg=true)
    for item in [i for i in s.items if i.kind == "infection" and i.fields["organism"] and i.fields["grade"] < 4]:
        if rng.random() < 0.4:
            organism, item.fields["organism"] = item.fields["organism"], None
            later(item, "correct", "organism identified by a culture/PCR result reported after entry",
                  organism=organism)
    for item in [i for i in s.items if i.kind == "ae" and i.fields.get("aware") and i.fields["grade"] < 5]:
        if rng.random() < 0.3:
            true = item.fields["aware"]
            item.fields["aware"] = f"{item.fields['onset'] + _days(2):%Y-%m-%d}T09:00"
            later(item, "correct", "awareness time taken from the site's first e-mail, not the CRF date", aware=true)
    if lab_items and rng.random() < 0.06:
        original = rng.choice(lab_items)
        duplicate = s.add(original.day, "lab", **original.fields)
        later(duplicate, "void", "duplicate entry: the same LIS report was entered twice")
    transfusions = [i for i in s.items if i.kind == "transfusion"]
    if transfusions and rng.random() < 0.03:
        day = rng.choice(transfusions).day
        stray = s.add(day, "transfusion", date=day, product="platelets", units=1)
        later(stray, "void", "entered in the wrong patient's record; it belongs to another subject")


# ---------------------------------------------------------------------------------------- commands

def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def commands_for(s: Subject) -> list[Command]:
    """The subject's items in clinical order, as commands; ``SUBJECT#N`` is an item's position + 1."""
    baseline(s)
    if s.failure is None:
        demo_course.clinical_course(s, dosing)
        s.items = [i for i in s.items if i.day <= s.end]
        data_issues(s)
    order = {id(item): n for n, item in enumerate(s.items)}
    items = sorted(s.items, key=lambda i: (i.day, DAY_ORDER[i.kind], order[id(i)]))
    version = {id(item): n for n, item in enumerate(items, start=1)}
    commands = []
    for item in items:
        if item.target is not None:
            ref = f"{s.code}#{version[id(item.target)]}"
            commands.append(Command(item.kind, ref=ref, fields=item.fields, reason=item.reason))
        else:
            fields = {k: _value(v) for k, v in item.fields.items() if v is not None}
            commands.append(Command("record", subject=s.code, kind=item.kind, fields=fields,
                                    source=SOURCES.get(item.kind, "CRF")))
    return acknowledge_deviations(commands)


def plan_cohort(patients: int, seed: int) -> list[Subject]:
    """Every subject with its code and transplant date, in registration order."""
    failures = round(patients * SCREEN_FAILURE_SHARE)
    span = (LAST_TRANSPLANT - FIRST_TRANSPLANT).days
    subjects = []
    for prefix, count, width in (("S", patients, max(3, len(str(patients)))),
                                 ("SF", failures, max(2, len(str(failures))))):
        for n in range(count):
            code = f"{prefix}{n + 1:0{width}d}"
            rng = random.Random(f"{seed}/{code}")
            day = FIRST_TRANSPLANT + _days(int((n + rng.random()) * span / count))
            subjects.append(Subject(code, rng, day, failure=n % len(SCREEN_FAILURES) if prefix == "SF" else None))
    return sorted(subjects, key=lambda s: (s.transplant, s.code))
