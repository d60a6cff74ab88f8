"""The demo cohort's clinical course after enrolment: counts, transfusions, infections, GVHD, fates.

Pure and deterministic: every draw comes from the subject's own ``random.Random``. Each figure
below is chosen to sit inside what published allo-HSCT and poor-graft-function (PGF) cohorts
report; ``docs/demo.md`` names the sources. In short:

* Recovery. Each lineage follows a logistic rise from a PGF baseline to a plateau, starting a
  log-normally distributed number of days after MSC D1 (median ~3-5 weeks), so recoveries spread
  over weeks and some come after the day-56 evaluation. About 45% of patients reach platelets
  >= 50, 15% settle between 20 and 50, the rest stay transfusion dependent; ~80% recover
  neutrophils, ~60% red cells. Some secondary-PGF patients have neutrophils (or Hb) already
  recovered at D1 (not evaluable for that lineage under the v2 rules).
* Transfusions. Platelets are transfused below 10x10^9/L (below 20 in about a third of bleeding
  or febrile episodes), one apheresis unit of ~3x10^11 platelets; the count rises by
  CCI x dose / BSA (1-hour CCI ~ 13 in responsive patients, 1-4 in the ~20% who are refractory)
  and the transfused platelets fade with a ~3.5-day time constant. Red cells below Hb 65 g/L (two
  units below 60), each unit adding ~10 g/L that fades over ~5 weeks.
* Infections. CMV reactivation (blood, CMV DNAemia treated pre-emptively) in ~65% after a
  haploidentical transplant and ~35% otherwise, often before D1 (prevalent at baseline); EBV
  DNAemia in ~20% (haplo) / 10%; bacterial and fungal episodes; a patient who dies of infection
  has a grade 5 infection.
* GVHD. Some patients have acute GVHD when PGF is diagnosed (before D1: prevalent); ~20% flare
  after D1; chronic GVHD in ~30% of those alive at its onset (day +100..+300).
* Fates. 1-year mortality ~35-40% (PGF is a poor-prognosis complication): infection, bleeding,
  GVHD and organ failure, more often with a poor graft; relapse in ~18% of malignant diseases in
  the first year, fatal in about half within months. ~4% are lost to follow-up, and the data end
  on ``DATA_CUTOFF`` (administrative censoring for the latest patients).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import attrs

from pgf_events.demo_tables import (
    CHRONIC_PATTERNS,
    COMMON_AES,
    FATAL_INFECTIONS,
    INFECTIONS,
    OTHER_DEATHS,
    SAES,
    Curve,
)

DATA_CUTOFF = date(2025, 12, 31)  # the demo's data end: later patients are administratively censored
MALIGNANT_EXCLUDED = ("aplastic anaemia",)
PLT_UNIT = 3.0  # x10^11 platelets in one apheresis unit
PLT_FADE_DAYS = 3.5
RBC_FADE_DAYS = 35


@attrs.define
class Course:
    """What the phases share about one subject beyond :class:`~pgf_events.demo.Subject`."""

    haplo: bool
    secondary: bool
    anc: Curve
    plt: Curve
    hb: Curve
    plt_class: str  # CR | PR | NR: where the platelet plateau lies
    refractory: bool
    cci: float
    bsa: float
    lost: date | None = None  # last contact of a patient lost to follow-up
    infection_death: tuple[str, str, tuple[str, str], int] | None = None


def _days(n: float) -> timedelta:
    return timedelta(days=int(n))


def _onset(rng: Any, median: float, sigma: float, low: int, high: int) -> float:
    return min(high, max(low, rng.lognormvariate(math.log(median), sigma)))


def _donor_and_type(s: Any) -> tuple[bool, bool]:
    register = next(i for i in s.items if i.kind == "register")
    enrol = next((i for i in s.items if i.kind == "enrol"), None)
    secondary = bool(enrol and enrol.fields.get("pgf_type") == "secondary")
    return register.fields.get("donor_type") == "haploidentical", secondary


def fate(s: Any) -> Course:
    """Graft response per lineage, refractoriness, death, relapse, withdrawal, loss and data end."""
    rng = s.rng
    haplo, secondary = _donor_and_type(s)
    u = rng.random()  # graft quality: correlates the three lineages and survival

    def responds(p: float) -> bool:
        return rng.random() < p * (0.6 + 0.8 * u)

    if secondary and rng.random() < 0.15:  # neutrophils already recovered when PGF is diagnosed
        anc = Curve(rng.uniform(0.7, 1.5), rng.uniform(1.5, 3.5), 0, 5)
    elif responds(0.8):
        anc = Curve(rng.uniform(0.05, 0.4), rng.uniform(1.2, 4.0), _onset(rng, 18, 0.6, 3, 150), 4)
    else:
        anc = Curve(rng.uniform(0.05, 0.3), rng.uniform(0.15, 0.45), 20, 10)
    plt_class = "CR" if responds(0.45) else "PR" if responds(0.27) else "NR"
    plateau = {"CR": (60, 180), "PR": (24, 45), "NR": (5, 17)}[plt_class]
    plt = Curve(rng.uniform(4, 16), rng.uniform(*plateau), _onset(rng, 30, 0.6, 5, 200), 5)
    if secondary and rng.random() < 0.08:  # Hb already >= 70 without transfusion at D1
        hb = Curve(rng.uniform(72, 85), rng.uniform(95, 125), 0, 8)
    elif responds(0.6):
        hb = Curve(rng.uniform(52, 66), rng.uniform(95, 130), _onset(rng, 40, 0.5, 7, 200), 8)
    else:
        hb = Curve(rng.uniform(50, 62), rng.uniform(50, 62), 20, 10)
    refractory = rng.random() < 0.2
    course = Course(haplo=haplo, secondary=secondary, anc=anc, plt=plt, hb=hb, plt_class=plt_class,
                    refractory=refractory, cci=rng.uniform(1, 4) if refractory else max(7.5, rng.gauss(13, 3)),
                    bsa=round(math.sqrt(rng.gauss(165, 8) * s.weight / 3600), 2))

    s.end = s.d1 + _days(365 + rng.randint(0, 21))
    poor = plt_class == "NR" or anc.plateau < 0.5
    if rng.random() < (0.36 if poor else 0.13) + (0.06 if refractory else 0):
        s.death = s.d1 + _days(min(rng.uniform(6, 360), rng.uniform(6, 360)) if poor else rng.uniform(20, 360))
        if rng.random() < (0.6 if poor else 0.45):
            course.infection_death = rng.choice(FATAL_INFECTIONS)
            s.cause = course.infection_death[0]
        else:
            choices = [c for c in OTHER_DEATHS if not c[2] or plt_class == "NR"]
            s.cause = rng.choice(choices)[0]
    if s.diagnosis not in MALIGNANT_EXCLUDED and rng.random() < 0.2:
        s.relapse = s.d1 + _days(rng.uniform(30, 330))
        if s.death and s.relapse >= s.death:
            s.relapse = None
        elif not s.death and rng.random() < 0.4:
            s.death, s.cause = s.relapse + _days(rng.uniform(25, 150)), f"relapse of {s.diagnosis}"
    if not s.death and rng.random() < 0.05:
        s.withdraw_after = rng.randint(1, 2)
    s.end = s.death or s.end
    if not s.death and not s.withdraw_after and rng.random() < 0.04:
        course.lost = s.d1 + _days(rng.uniform(90, 300))
        s.end = course.lost
    s.end = min(s.end, DATA_CUTOFF)
    if s.death and s.death > DATA_CUTOFF:
        s.death, s.cause = None, None
    if s.relapse and s.relapse > DATA_CUTOFF:
        s.relapse = None
    s.obs_end = s.end
    return course


def lab_days(s: Any) -> list[date]:
    """Counts every 2-3 days from screening to D1, 2-3 a week for 8 weeks, weekly to D92, every two
    weeks to ~D180, then monthly."""
    rng = s.rng
    days = {s.screen_day}
    day = s.screen_day + _days(rng.randint(2, 3))
    while day < s.d1:
        days.add(day)
        day += _days(rng.randint(2, 3))
    for week in range(8):
        for offset in rng.choice(((0, 3), (0, 2, 4), (0, 3, 5), (1, 4))):
            days.add(s.d1 + _days(7 * week + offset))
    for week in range(8, 13):
        days.add(s.d1 + _days(7 * week + rng.randint(0, 2)))
    day = s.d1 + _days(91)
    while day <= s.obs_end:
        days.add(day)
        day += _days(rng.randint(12, 14) if (day - s.d1).days < 180 else rng.randint(26, 35))
    return sorted(d for d in days if d <= s.obs_end)


def labs(s: Any, c: Course) -> None:
    """Counts along the curves plus what transfusions add; transfusions when counts are low."""
    rng = s.rng
    plt_given: list[tuple[date, float]] = []  # (day, 1-hour increment)
    rbc_given: list[tuple[date, int]] = []
    for day in lab_days(s):
        t = (day - s.d1).days
        marrow = 0.4 if s.relapse and day >= s.relapse else 1.0
        anc = max(0.01, round(c.anc.at(t) * marrow * math.exp(rng.gauss(0, 0.15)), 2))
        own = c.plt.at(t) * marrow * math.exp(rng.gauss(0, 0.12))
        boost = sum(inc * math.exp(-(day - given).days / PLT_FADE_DAYS) for given, inc in plt_given if given < day)
        plt = max(1, round(own + boost))
        rbc = sum(10 * units * max(0.0, 1 - (day - given).days / RBC_FADE_DAYS) for given, units in rbc_given)
        hb = min(160, max(40, round(c.hb.at(t) - 20 * (1 - marrow) + rbc + rng.gauss(0, 3))))
        panel: dict[str, Any] = {"date": day, "anc": anc, "plt": plt, "hb": hb,
                                 "wbc": round(anc + rng.uniform(0.2, 1.0), 2)}
        if t % 28 == 0 or day == s.screen_day:
            panel.update(bilirubin=round(rng.uniform(6, 20), 1), bilirubin_unit="µmol/L")
        s.add(day, "lab", **panel)
        if plt < 10 or (plt < 20 and rng.random() < 0.3):
            s.add(day, "transfusion", date=day, product="platelets", units=1)
            cci = c.cci * rng.uniform(0.8, 1.2)
            plt_given.append((day, cci * PLT_UNIT / c.bsa))  # CCI = increment x BSA / dose(10^11)
        if hb < 65:
            units = 2 if hb < 60 else 1
            rbc_given.append((day, units))
            s.add(day, "transfusion", date=day, product="rbc", units=units)


def _known(s: Any, onset: date) -> date:
    """When an episode can be recorded: its onset, or the registration day for an earlier onset."""
    registered = next(i.day for i in s.items if i.kind == "register")
    return max(onset, registered)


def infections(s: Any, c: Course) -> None:
    """Viral reactivations, bacterial/fungal episodes, the fatal infection; some before D1."""
    rng = s.rng
    if rng.random() < (0.65 if c.haplo else 0.35):
        onset = s.transplant + _days(_onset(rng, 38, 0.35, 18, 120))
        s.add(_known(s, onset), "infection", onset=onset, site="blood", grade=rng.choice((2, 2, 2, 3)),
              organism="cytomegalovirus")
    if rng.random() < (0.2 if c.haplo else 0.1):
        onset = s.transplant + _days(rng.uniform(40, 140))
        s.add(_known(s, onset), "infection", onset=onset, site="blood", grade=2, organism="Epstein-Barr virus")
    if rng.random() < 0.1:  # a bacterial episode while PGF is diagnosed: prevalent at baseline
        onset = s.d1 - _days(rng.randint(1, 6))
        s.add(_known(s, onset), "infection", onset=onset, site="blood", grade=3, organism="Escherichia coli")
    for _ in range(int(rng.random() < 0.4) + int(rng.random() < 0.15)):
        onset = s.d1 + _days(min(rng.randint(0, 60), rng.randint(0, 240)))
        site, organism = rng.choice(INFECTIONS)
        s.add(onset, "infection", onset=onset, site=site, grade=rng.choice((2, 2, 3, 3, 4)), organism=organism)
    if c.infection_death and s.death:
        _, _, (site, organism), before = c.infection_death
        onset = s.death - _days(before)
        s.add(_known(s, onset), "infection", onset=onset, site=site, grade=5, organism=organism)
    s.items = [i for i in s.items if i.kind != "infection" or i.day <= s.obs_end]


def gvhd(s: Any, c: Course) -> None:
    """Acute GVHD at PGF diagnosis (before D1) in some, flares after D1, chronic GVHD later."""
    rng = s.rng
    if rng.random() < 0.1:
        s.add(s.screen_day, "gvhd", date=s.screen_day, skin_bsa=rng.randint(10, 40),
              bilirubin=round(rng.uniform(6, 20), 1), bilirubin_unit="µmol/L", upper_gi=rng.random() < 0.3,
              stool_ml=50 * rng.randint(0, 8))
    flare = rng.choice((1, 2, 3)) if rng.random() < 0.2 else None
    gut_death = s.cause == "acute GVHD of the gut"
    for n, offset in enumerate((0, 14, 28, 56, 84)):
        day = s.d1 + _days(offset)
        if day > s.obs_end:
            break
        stage: dict[str, Any] = {"date": day, "skin_bsa": 0, "bilirubin": round(rng.uniform(6, 20), 1),
                                 "bilirubin_unit": "µmol/L", "upper_gi": False, "stool_ml": 50 * rng.randint(0, 6)}
        if n == flare:
            stage.update(skin_bsa=rng.randint(10, 60), upper_gi=rng.random() < 0.3)
            if rng.random() < 0.3:
                stage["stool_ml"] = 50 * rng.randint(12, 26)
        elif flare is not None and n == flare + 1:
            stage["skin_bsa"] = rng.randint(0, 10)
        s.add(day, "gvhd", **stage)
    if gut_death and s.death:
        day = max(s.d1, s.death - _days(rng.randint(5, 15)))
        s.add(day, "gvhd", date=day, skin_bsa=rng.randint(20, 60), bilirubin=round(rng.uniform(40, 120), 1),
              bilirubin_unit="µmol/L", upper_gi=True, stool_ml=50 * rng.randint(32, 45), severe_pain=True)
    onset = s.transplant + _days(rng.uniform(100, 300))
    if rng.random() < 0.38 and onset > s.d1 and onset <= s.obs_end:
        s.add(onset, "gvhd", date=onset, chronic=True, organ=dict(rng.choice(CHRONIC_PATTERNS)))


def _ae(s: Any, onset: date, term: str, grade: int, duration: int, **extra: Any) -> None:
    if onset <= s.obs_end:
        s.add(onset, "ae", onset=onset, term=term, grade=grade, end=min(onset + _days(duration), s.end), **extra)


def _aware(s: Any, onset: date) -> str:
    return f"{onset + _days(s.rng.choice((0, 0, 1))):%Y-%m-%d}T{s.rng.randint(7, 22):02d}:{s.rng.randint(0, 59):02d}"


def adverse_events(s: Any, c: Course) -> None:
    """Infusion reactions (uncommon, mostly grade 1), common AEs, SAEs and the fatal AE, with CDISC
    action/outcome terms and expectedness per the reference safety information (sometimes missing)."""
    rng = s.rng
    for item in [i for i in s.items if i.kind == "infusion"]:
        if rng.random() < 0.03:
            grade = 1 if rng.random() < 0.8 else 2
            _ae(s, item.day, "infusion related reaction", grade, 1, related="probable", expected=True,
                action="DOSE NOT CHANGED", outcome="RECOVERED/RESOLVED")
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        term, low, high = rng.choice(COMMON_AES)
        _ae(s, s.d1 + _days(rng.randint(0, 120)), term, rng.randint(low, high), rng.randint(2, 21),
            related=rng.choice(("not", "not", "unlikely", "possible")), action="DOSE NOT CHANGED",
            outcome=rng.choice(("RECOVERED/RESOLVED", "RECOVERING/RESOLVING")))
    if rng.random() < 0.18:
        term, grade, serious = rng.choice(SAES)
        onset = s.d1 + _days(rng.randint(3, 150))
        related = rng.choice(("not", "not", "unlikely", "possible"))
        extra: dict[str, Any] = {"aware": _aware(s, onset)} if rng.random() > 0.06 else {}  # some not recorded
        if related == "possible" and rng.random() < 0.8:  # the investigator's expectedness, sometimes missing
            extra["expected"] = rng.random() < 0.5
        action = "DOSE DELAYED" if onset <= s.d1 + _days(21) else "NOT APPLICABLE"
        _ae(s, onset, term, grade, rng.randint(5, 25), serious=list(serious), related=related,
            action=action, outcome="RECOVERED/RESOLVED", **extra)
    if s.death and not s.cause.startswith("relapse"):
        term = c.infection_death[1] if c.infection_death else next(d[1] for d in OTHER_DEATHS if d[0] == s.cause)
        onset = s.death - _days(rng.randint(0, 3))
        action = "DRUG WITHDRAWN" if onset <= s.d1 + _days(23) else "NOT APPLICABLE"
        _ae(s, onset, term, 5, 99, serious=["death", "hospitalisation"], aware=_aware(s, s.death),
            related=rng.choice(("not", "unlikely")), action=action, outcome="FATAL")


def follow_up(s: Any, c: Course) -> None:
    """Relapse, contacts every ~3 months (the last one at the end of follow-up), and death."""
    rng = s.rng
    if s.relapse:
        s.add(s.relapse, "relapse", date=s.relapse)
    quarter, day = 1, s.d1
    while True:
        day = s.d1 + _days(91 * quarter + rng.randint(-7, 7))
        if day >= s.end or quarter > 4:
            day = s.end
        if s.death and day >= s.death:
            break
        contact: dict[str, Any] = {"date": day, "status": "alive"}
        if s.diagnosis not in MALIGNANT_EXCLUDED:
            contact["disease"] = "relapsed" if s.relapse and s.relapse <= day else "free"
        s.add(day, "contact", **contact)
        if day >= s.end:
            break
        quarter += 1
    if s.death:
        s.add(s.death, "death", date=s.death, cause=s.cause)


def clinical_course(s: Any, dosing: Callable[[Any], None]) -> Course:
    """Run the phases in order; ``dosing`` (the infusions) is the caller's."""
    course = fate(s)
    dosing(s)
    for phase in (labs, infections, gvhd, adverse_events, follow_up):
        phase(s, course)
    return course
