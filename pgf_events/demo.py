"""``pgf demo``: a synthetic, clinically plausible MSC-for-PGF cohort, recorded like a coordinator would.

The model (see clinical-rules.md for the rules every record must pass):

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
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

import attrs
import click

from pgf_events import demo_course
from pgf_events.application import BatchRejected, Command, Result
from pgf_events.cli._output import progress
from pgf_events.domain.errors import PgfError

FIRST_TRANSPLANT, LAST_TRANSPLANT = date(2024, 1, 1), date(2025, 3, 31)
SCREEN_FAILURE_SHARE = 0.15
SITES = ("PKUPH", "RJH", "SYSU1", "WCH")
DIAGNOSES = {"AML": 36, "ALL": 20, "MDS": 16, "aplastic anaemia": 12, "CML": 4, "lymphoma": 6, "myelofibrosis": 6}
DONORS = {"haploidentical": 55, "matched sibling": 25, "matched unrelated": 15, "mismatched unrelated": 5}
TYPED_OK = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{i}": "no" for i in range(1, 9)}}
# Screen-failure reasons, used in turn: (age, screening overrides).
SCREEN_FAILURES = (
    (63, {}), (40, {"kps": 60}), (35, {"criterion": {"EX6": "yes"}}), (50, {"criterion": {"EX7": "yes"}}),
    (45, {"expected_survival_months": 3}), (55, {"criterion": {"EX1": "yes"}}),
)
WITHDRAWAL_REASONS = ("patient decision: withdrew consent for further MSC infusions",
                      "investigator decision: uncontrolled infection, MSC treatment stopped")
SOURCES = {"register": "screening log", "consent": "signed ICF", "screen": "eligibility checklist",
           "enrol": "enrolment form", "infusion": "cell therapy infusion record", "lab": "LIS report",
           "transfusion": "blood bank record", "gvhd": "GVHD assessment form", "contact": "follow-up call log"}
# Same-day recording order (a transfusion follows the count that triggered it; death comes last).
ORDER = {k: i for i, k in enumerate((
    "register", "consent", "screen", "enrol", "lab", "transfusion", "infusion", "gvhd", "infection", "ae",
    "relapse", "contact", "withdraw", "death", "correct", "void"))}


@attrs.define(eq=False)
class Item:
    """One command to be: a record, or a correction/void of ``target`` (resolved to a ref later)."""

    day: date
    kind: str
    fields: dict[str, Any] = attrs.field(factory=dict)
    target: Item | None = None
    reason: str | None = None


@attrs.define
class Curve:
    """A logistic rise from ``base`` to ``plateau``, centred ``start`` days after D1."""

    base: float
    plateau: float
    start: int
    width: float

    def at(self, t: int) -> float:
        return self.base + (self.plateau - self.base) / (1 + math.exp(-(t - self.start) / self.width))


@attrs.define
class Subject:
    code: str
    rng: random.Random
    transplant: date
    failure: int | None = None  # index into SCREEN_FAILURES for screen failures
    items: list[Item] = attrs.field(factory=list)
    # Set by the phases below.
    screen_day: date = FIRST_TRANSPLANT
    diagnosis: str = ""
    weight: float = 0.0
    d1: date = FIRST_TRANSPLANT
    end: date = FIRST_TRANSPLANT  # last clinical date: death or last follow-up
    obs_end: date = FIRST_TRANSPLANT  # last lab/safety date: withdrawal or ``end``
    death: date | None = None
    cause: str | None = None
    relapse: date | None = None
    withdraw_after: int | None = None  # doses given before withdrawal
    curves: dict[str, Curve] = attrs.field(factory=dict)

    def add(self, day: date, kind: str, **fields: Any) -> Item:
        item = Item(day, kind, fields)
        self.items.append(item)
        return item

    def pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]


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
    screening = {"date": s.screen_day, "kps": rng.choice((70, 80, 80, 90)),
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
    items = sorted(s.items, key=lambda i: (i.day, ORDER[i.kind], order[id(i)]))
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
    return commands


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


def run_demo(state: Any, *, patients: int, seed: int) -> None:
    """Record the cohort, one atomic batch per patient, then print a summary on stdout."""
    started = time.perf_counter()
    subjects = plan_cohort(patients, seed)
    app = state.app()
    taken = [s.code for s in subjects if app.has_patient(s.code)]
    if taken:
        raise PgfError(
            f"the store {app.store.display} already holds demo subjects ({', '.join(sorted(taken)[:3])}"
            f"{', ...' if len(taken) > 3 else ''}); run the demo into a new store, e.g. --db sqlite:///another.db"
        )
    counts: Counter[str] = Counter()
    with progress(len(subjects), "Recording demo patients") as bar:
        for s in subjects:
            results = _record(app, state.user, s.code, commands_for(s))
            counts.update(r.kind for r in results)
            bar.update(1)
    _summary(app.store.display, seed, subjects, counts, time.perf_counter() - started)
    _endpoint_report(app)


def _endpoint_report(app: Any) -> None:
    """End as interface.md says: with the endpoint report, from the caught-up read models."""
    from pgf_events.cli.report import print_human  # noqa: PLC0415
    from pgf_events.projections.queries import cohort_report  # noqa: PLC0415
    from pgf_events.projections.store import ProjectionStore  # noqa: PLC0415

    store = ProjectionStore(app)
    try:
        click.echo("")
        print_human("endpoints", cohort_report(app, "endpoints", store=store))
    finally:
        store.close()


def write_jsonl(path: str, *, patients: int, seed: int) -> int:
    """Write the same cohort as ``pgf import`` lines instead of recording it; returns the line count."""
    from pgf_events.cli.batch import command_line  # noqa: PLC0415

    count = 0
    with click.open_file(path, "w", encoding="utf-8") as out:
        for s in plan_cohort(patients, seed):
            for command in commands_for(s):
                out.write(command_line(command) + "\n")
                count += 1
    return count


def _record(app: Any, user: str, code: str, commands: list[Command]) -> list[Result]:
    try:
        results = app.execute(commands, user=user)
    except BatchRejected as e:  # a bug in this module: say which synthetic event broke which rule
        raise PgfError(f"the demo's own record for {code} was rejected ({e.errors[0][1]})") from None
    if [r.version for r in results] != list(range(1, len(commands) + 1)):
        raise AssertionError(f"demo versions for {code} do not match the batch positions")
    return results


def _summary(store: str, seed: int, subjects: list[Subject], counts: Counter[str], seconds: float) -> None:
    total = sum(counts.values())
    groups = {"patients enrolled": [s.code for s in subjects if s.failure is None],
              "screen failures": [s.code for s in subjects if s.failure is not None]}
    lines = [f"Demo cohort recorded in {store} (seed {seed})"]
    lines += [f"  {label:<17}  {len(codes):>6}" + (f"  ({min(codes)}..{max(codes)})" if codes else "")
              for label, codes in groups.items()]
    rule = f"  {'-' * 12}  {'-' * 6}"
    lines += ["", f"  {'kind':<12}  {'events':>6}", rule]
    lines += [f"  {kind:<12}  {counts[kind]:>6}" for kind in sorted(counts, key=ORDER.__getitem__)]
    lines += [rule, f"  {'total':<12}  {total:>6}", "",
              f"  corrections {counts['correct']}, voids {counts['void']}",
              f"  wall time {seconds:.2f} s, {total / max(seconds, 1e-6):.0f} events/s"]
    click.echo("\n".join(lines))
