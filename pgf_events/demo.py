"""``pgf demo``: a synthetic, clinically plausible MSC-for-PGF cohort, recorded like a coordinator would.

The model (see docs/rules.md for the rules every record must pass; the tables it draws from are in
:mod:`pgf_events.demo_tables`):

* Calendar. Fixed, never today's date: transplants (day 0) are spread over 2024-01..2025-03, PGF is
  diagnosed on day +28..+45, then registration, consent, screening (~day +30..+50), enrolment and
  MSC D1 follow within days. Follow-up runs ~1 year from D1, so every clinical date is in the past.
* Randomness. Every subject draws from its own ``random.Random(f"{seed}/{code}")``: one seed gives
  one cohort, event for event.
* Cohort. ``patients`` enrolled subjects ``S001``... plus ~15% screen failures ``SF01``... who are
  registered, consented and screened with one failing criterion (age 63, KPS 60, survival 3 months,
  EX1/EX6/EX7 = yes) and never enrolled.
* Graft quality. A latent ``u`` in [0, 1] per patient drives correlated outcomes: ANC, Hb and PLT
  follow a logistic rise from PGF-level baselines to a plateau (responders) or stay low
  (non-responders, transfusion dependent). Labs: 2-3 a week for 8 weeks, weekly to D1+91, then
  monthly; platelets are transfused below 10, red cells below 67 g/L (a transfused unit lifts Hb
  ~10 g/L and fades over 25 days). Poor grafts die more often (~15-20% within a year).
* Dosing. 4 weekly doses of 1e6 cells/kg x that day's weight (±5% dose spread, ~5% ±15%
  deviations), mostly on target, some early/late within or outside the ±2-day window, a few missed
  doses, a few withdrawals after 1-2 doses.
* Safety and follow-up. AEs (some serious, with awareness times), infections, MAGIC acute GVHD
  assessments with raw measures, some chronic GVHD, relapses, deaths and 3-monthly contacts.
* Data issues. A few transcription errors later corrected, and duplicate or misfiled entries
  voided, each with a reason (they exercise the audit trail; the effective data match the model).

Each patient's commands are sorted by clinical date and executed as one atomic batch; an event's
reference ``SUBJECT#N`` is its position in that batch, so corrections can name their targets up front.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Any

from pgf_events.commands import Command
from pgf_events.demo_deviations import acknowledge_deviations
from pgf_events.demo_tables import (
    CHRONIC_PATTERNS,
    COMMON_AES,
    DIAGNOSES,
    DONORS,
    FATAL,
    FIRST_TRANSPLANT,
    INFECTIONS,
    LAST_TRANSPLANT,
    SAES,
    SCREEN_FAILURE_SHARE,
    SCREEN_FAILURES,
    SITES,
    SOURCES,
    TYPED_OK,
    WITHDRAWAL_REASONS,
    Curve,
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
    pgf_diagnosed = s.transplant + _days(rng.randint(28, 45))
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
    screening = {"date": s.screen_day, "kps": rng.choice((70, 80, 80, 90)),
                 "expected_survival_months": rng.randint(6, 24), "criterion": dict(TYPED_OK)}
    screening.update({k: v for k, v in overrides.items() if k != "criterion"})
    screening["criterion"].update(overrides.get("criterion", {}))
    s.add(s.screen_day, "screen", **screening)
    if s.failure is None:
        enrolled = s.screen_day + _days(rng.randint(1, 4))
        s.d1 = enrolled + _days(rng.randint(0, 3))
        s.add(enrolled, "enrol", date=enrolled, pgf_type="primary" if rng.random() < 0.55 else "secondary",
              pgf_diagnosis_date=pgf_diagnosed)


def fate(s: Subject) -> None:
    """Graft quality, blood count curves, death, relapse, withdrawal and the follow-up horizon."""
    rng = s.rng
    u = rng.random()

    def lineage(cut: float) -> bool:
        return u + rng.gauss(0, 0.08) > cut

    s.curves["anc"] = Curve(rng.uniform(0.05, 0.4), rng.uniform(1.5, 4.0), rng.randint(7, 35), 4) \
        if lineage(0.25) else Curve(rng.uniform(0.05, 0.3), rng.uniform(0.15, 0.4), 20, 10)
    plt_band = (60, 160) if lineage(0.55) else (27, 40) if lineage(0.35) else (6, 16)
    s.curves["plt"] = Curve(rng.uniform(4, 16), rng.uniform(*plt_band), rng.randint(14, 45), 5)
    s.curves["hb"] = Curve(rng.uniform(52, 68), rng.uniform(95, 130), rng.randint(14, 50), 8) \
        if lineage(0.4) else Curve(rng.uniform(50, 62), rng.uniform(50, 62), 20, 10)
    s.end = s.d1 + _days(365 + rng.randint(0, 21))
    if rng.random() < (0.3 if u < 0.3 else 0.08):
        s.death = s.d1 + _days(rng.randint(30, 340))
        s.cause = rng.choice([c for c in FATAL if c != "intracranial haemorrhage" or plt_band[0] < 20])
    if s.diagnosis != "aplastic anaemia" and rng.random() < 0.12:
        s.relapse = s.d1 + _days(rng.randint(45, 300))
        if s.death and s.relapse >= s.death:
            s.relapse = None
        elif not s.death and rng.random() < 0.4 and s.relapse + _days(120) < s.end:
            s.death, s.cause = s.relapse + _days(rng.randint(20, 120)), f"relapse of {s.diagnosis}"
    if not s.death and rng.random() < 0.07:
        s.withdraw_after = rng.randint(1, 2)
    s.end = s.death or s.end
    s.obs_end = s.end


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


def _lab_days(s: Subject) -> list[date]:
    rng = s.rng
    days = {s.screen_day}
    for week in range(8):
        for offset in rng.choice(((0, 3), (0, 2, 4), (0, 3, 5), (1, 4))):
            days.add(s.d1 + _days(7 * week + offset))
    for week in range(8, 13):
        days.add(s.d1 + _days(7 * week + rng.randint(0, 2)))
    day = s.d1 + _days(91)
    while day <= s.obs_end:
        days.add(day)
        day += _days(rng.randint(26, 35))
    return sorted(d for d in days if d <= s.obs_end)


def labs(s: Subject) -> None:
    """Blood counts along the patient's curves; transfusions while counts are low."""
    rng = s.rng
    rbc: list[tuple[date, int]] = []
    for day in _lab_days(s):
        t = (day - s.d1).days
        marrow = 0.4 if s.relapse and day >= s.relapse else 1.0
        anc = max(0.01, round(s.curves["anc"].at(t) * marrow * math.exp(rng.gauss(0, 0.15)), 2))
        plt = max(1, round(s.curves["plt"].at(t) * marrow * math.exp(rng.gauss(0, 0.12))))
        boost = sum(10 * units * max(0.0, 1 - (day - given).days / 25) for given, units in rbc)
        hb = min(160, max(40, round(s.curves["hb"].at(t) - 20 * (1 - marrow) + boost + rng.gauss(0, 3))))
        panel = {"date": day, "anc": anc, "plt": plt, "hb": hb, "wbc": round(anc + rng.uniform(0.2, 1.0), 2)}
        if t % 28 == 0 or day == s.screen_day:
            panel["bilirubin"] = round(rng.uniform(6, 20), 1)
            panel["bilirubin_unit"] = "µmol/L"
        s.add(day, "lab", **panel)
        if plt < 10:
            s.add(day, "transfusion", date=day, product="platelets", units=1)
        if hb < 67:
            units = 2 if hb < 60 else 1
            rbc.append((day, units))
            s.add(day, "transfusion", date=day, product="rbc", units=units)


def _ae(s: Subject, onset: date, term: str, grade: int, duration: int, **extra: Any) -> Item | None:
    if onset > s.obs_end:
        return None
    end = min(onset + _days(duration), s.end)
    return s.add(onset, "ae", onset=onset, term=term, grade=grade, end=end, **extra)


def _aware(s: Subject, onset: date) -> str:
    return f"{onset + _days(s.rng.choice((0, 0, 1))):%Y-%m-%d}T{s.rng.randint(7, 22):02d}:{s.rng.randint(0, 59):02d}"


def safety(s: Subject) -> None:
    """Adverse events (incl. SAEs and a fatal AE), infections, acute and chronic GVHD assessments."""
    rng = s.rng
    for item in [i for i in s.items if i.kind == "infusion"]:
        if rng.random() < 0.08:
            _ae(s, item.day, "infusion-related reaction", 1, 1, related="probable", outcome="recovered")
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        term, low, high = rng.choice(COMMON_AES)
        _ae(s, s.d1 + _days(rng.randint(0, 120)), term, rng.randint(low, high), rng.randint(2, 21),
            related=rng.choice(("not", "not", "unlikely", "possible")), outcome=rng.choice(("recovered", "recovering")))
    if rng.random() < 0.18:
        term, grade, serious = rng.choice(SAES)
        onset = s.d1 + _days(rng.randint(3, 150))
        _ae(s, onset, term, grade, rng.randint(5, 25), serious=list(serious), aware=_aware(s, onset),
            related=rng.choice(("not", "not", "unlikely", "possible")), outcome="recovered")
    for _ in range(int(rng.random() < 0.45) + int(rng.random() < 0.15)):
        onset = s.d1 + _days(min(rng.randint(0, 60), rng.randint(0, 240)))
        if onset <= s.obs_end:
            site, organism = rng.choice(INFECTIONS)
            s.add(onset, "infection", onset=onset, site=site, grade=rng.choice((2, 2, 3, 3, 4)), organism=organism)
    if s.death and s.cause in FATAL:
        term, infection = FATAL[s.cause]
        if infection:
            onset = s.death - _days(infection[2])
            s.add(onset, "infection", onset=onset, site=infection[0], grade=4, organism=infection[1])
        onset = s.death - _days(rng.randint(0, 3))
        _ae(s, onset, term, 5, 99, serious=["death", "hospitalisation"], aware=_aware(s, s.death),
            related=rng.choice(("not", "unlikely")), outcome="fatal")
    flare = rng.choice((1, 2, 3)) if rng.random() < 0.25 else None
    for n, offset in enumerate((0, 14, 28, 56, 84)):
        day = s.d1 + _days(offset)
        if day > s.obs_end:
            break
        gvhd = {"date": day, "skin_bsa": 0, "bilirubin": round(rng.uniform(6, 20), 1), "bilirubin_unit": "µmol/L",
                "upper_gi": False,
                "stool_ml": 50 * rng.randint(0, 6)}
        if n == flare:
            gvhd["skin_bsa"] = rng.randint(10, 60)
            gvhd["upper_gi"] = rng.random() < 0.3
            if rng.random() < 0.3:
                gvhd["stool_ml"] = 50 * rng.randint(12, 26)
            if rng.random() < 0.2:
                gvhd["bilirubin"] = round(rng.uniform(35, 70), 1)
        elif flare is not None and n == flare + 1:
            gvhd["skin_bsa"] = rng.randint(0, 10)
        s.add(day, "gvhd", **gvhd)
    if rng.random() < 0.15:
        day = s.d1 + _days(rng.randint(120, 270))
        if day <= s.obs_end:
            s.add(day, "gvhd", date=day, chronic=True, organ=dict(rng.choice(CHRONIC_PATTERNS)))


def follow_up(s: Subject) -> None:
    """Relapse, contacts every ~3 months (last known alive, disease status), and death."""
    rng = s.rng
    if s.relapse:
        s.add(s.relapse, "relapse", date=s.relapse)
    for quarter in (1, 2, 3, 4):
        day = s.end if quarter == 4 else s.d1 + _days(91 * quarter + rng.randint(-7, 7))
        if s.death and day >= s.death:
            break
        contact: dict[str, Any] = {"date": day, "status": "alive"}
        if s.diagnosis != "aplastic anaemia":
            contact["disease"] = "relapsed" if s.relapse and s.relapse <= day else "free"
        s.add(day, "contact", **contact)
    if s.death:
        s.add(s.death, "death", date=s.death, cause=s.cause)


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
        for phase in (fate, dosing, labs, safety, follow_up):
            phase(s)
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
