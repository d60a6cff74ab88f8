"""Data for the benchmark, generated fresh on every run (never timed).

- :func:`import_store`: ``patients`` registered, consented, screened and enrolled patients, and a
  JSON Lines file of ``events`` lab results for them, interleaved in visit order (one day's labs
  for every patient, then the next day's), as a site would send a migration.
- :func:`cohort_log`: a registry's log of ``events`` events. The patients come from the demo's
  cohort model (registration .. follow-up, labs, transfusions, AEs, GVHD, corrections, voids; ~60
  events each), recorded through the coordinator's command path (:class:`UnitOfWork`, every rule
  checked) and saved with large ``app.save(*patients)`` batches. Patients are recorded in groups
  and each group round-robin, a few events per patient per save, so the log interleaves patients
  the way a live registry does (a rebuild cannot just walk one patient at a time).
- :func:`long_patient`: one patient with ``events`` events (the ``pgf status`` figure).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

USER = "bench"
CRITERIA = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{n}": "no" for n in range(1, 9)}}
ENROLLED_ON = date(2020, 1, 10)


def open_store(url: str) -> Any:
    from pgf_events.application import TrialConduct  # noqa: PLC0415
    from pgf_events.store import parse_url  # noqa: PLC0415

    return TrialConduct(parse_url(url, cipher_key=""))


def _baseline_commands(subject: str) -> list[Any]:
    from pgf_events.application import Command  # noqa: PLC0415

    return [
        Command("record", subject=subject, kind="register", fields={
            "site": "PKU", "birth_date": "1975-05-05", "sex": "F", "weight_kg": 61,
            "transplant_date": "2019-11-20", "date": "2020-01-02"}),
        Command("record", subject=subject, kind="consent", fields={"date": "2020-01-03"}),
        Command("record", subject=subject, kind="screen", fields={
            "date": "2020-01-04", "kps": 80, "expected_survival_months": 12, "criterion": CRITERIA}),
        Command("record", subject=subject, kind="enrol", fields={"date": ENROLLED_ON.isoformat()}),
    ]


def _lab(rng: random.Random, subject: str, day: date) -> dict[str, Any]:
    return {"record": "lab", "subject": subject, "date": day.isoformat(), "anc": round(rng.uniform(0.1, 4), 2),
            "plt": round(rng.uniform(5, 150)), "hb": round(rng.uniform(60, 130)), "source": "LIS"}


def import_store(url: str, jsonl: Path, *, patients: int, events: int, seed: int = 7) -> list[str]:
    """Enrolled patients in the store at ``url``, and the lab lines to import into it. Returns the subjects."""
    subjects = [f"P{n:05d}" for n in range(1, patients + 1)]
    app = open_store(url)
    try:
        commands = [c for s in subjects for c in _baseline_commands(s)]
        for start in range(0, len(commands), 4000):
            app.execute(commands[start:start + 4000], user=app.acting_user())
    finally:
        app.close()
    rng = random.Random(seed)
    with jsonl.open("w", encoding="utf-8") as out:
        for n in range(events):
            day = ENROLLED_ON + timedelta(days=1 + n // patients)
            out.write(json.dumps(_lab(rng, subjects[n % patients], day)) + "\n")
    return subjects


def cohort_log(url: str, events: int, *, seed: int = 11, group: int = 400, per_round: int = 6,
               progress: Callable[[int], None] | None = None) -> int:
    """Record exactly ``events`` events of demo-model patients; returns the number of patients."""
    from pgf_events.application import UnitOfWork  # noqa: PLC0415
    from pgf_events.demo import commands_for, plan_cohort  # noqa: PLC0415

    patients = max(10, events // 50)  # the demo model averages ~60 events a patient: plan enough
    cohort = plan_cohort(patients, seed)
    app = open_store(url)
    written = used = 0
    try:
        for start in range(0, len(cohort), group):
            if written >= events:
                break
            plans = []
            for subject in cohort[start:start + group]:
                commands = commands_for(subject)[: events - written - sum(len(p) for p in plans)]
                if commands:
                    plans.append(commands)
            used += len(plans)
            unit = UnitOfWork(app, app.acting_user())
            step = 0
            while True:  # round-robin: a few events of every patient of the group per save
                batch = [c for commands in plans for c in commands[step:step + per_round]]
                if not batch:
                    break
                for command in batch:
                    unit.apply(command)
                app.save(*[p for p in unit.patients.values() if p.pending_events])
                step += per_round
                written += len(batch)
                if progress:
                    progress(len(batch))
            if written < events and start + group >= len(cohort):
                raise RuntimeError("the cohort model gave fewer events than planned")
    finally:
        app.close()
    return used


def long_patient(url: str, subject: str, events: int, *, seed: int = 3) -> None:
    """One enrolled patient with ``events`` events: labs mostly, transfusions, AEs, GVHD, contacts,
    some corrections and voids, a few a day from 2020 on (all in the past)."""
    from pgf_events.application import Command  # noqa: PLC0415

    rng = random.Random(seed)
    commands = _baseline_commands(subject)
    for n in range(4):
        commands.append(Command("record", subject=subject, kind="infusion", fields={
            "date": (ENROLLED_ON + timedelta(days=1 + 7 * n)).isoformat(), "cells": 6.1e7, "weight_kg": 61}))
    version = len(commands)
    labs: list[int] = []
    while len(commands) < events:
        version += 1
        day = ENROLLED_ON + timedelta(days=1 + (version // 3))
        roll = rng.random()
        if roll < 0.03 and labs:
            target = rng.choice(labs)
            labs.remove(target)
            commands.append(Command("correct", ref=f"{subject}#{target}", fields={"anc": round(rng.uniform(0.1, 4), 2)},
                                    reason="transcription error"))
        elif roll < 0.04 and labs:
            target = rng.choice(labs)
            labs.remove(target)
            commands.append(Command("void", ref=f"{subject}#{target}", reason="entered twice"))
        elif roll < 0.75:
            fields = _lab(rng, subject, day)
            del fields["record"], fields["subject"], fields["source"]
            commands.append(Command("record", subject=subject, kind="lab", fields=fields))
            labs.append(version)
        elif roll < 0.85:
            commands.append(Command("record", subject=subject, kind="transfusion", fields={
                "date": day.isoformat(), "product": rng.choice(("rbc", "platelets"))}))
        elif roll < 0.90:
            commands.append(Command("record", subject=subject, kind="ae", fields={
                "onset": day.isoformat(), "term": "nausea", "grade": rng.randint(1, 2)}))
        elif roll < 0.95:
            commands.append(Command("record", subject=subject, kind="gvhd", fields={
                "date": day.isoformat(), "skin_bsa": rng.randint(0, 30), "upper_gi": False}))
        else:
            commands.append(Command("record", subject=subject, kind="contact", fields={
                "date": day.isoformat(), "status": "alive"}))
    app = open_store(url)
    try:
        for start in range(0, len(commands), 1000):
            app.execute(commands[start:start + 1000], user=app.acting_user())
    finally:
        app.close()
