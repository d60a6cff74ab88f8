"""The demo cohort's clinical course is plausible (docs/demo.md): checked on the pure model of
``pgf demo --patients 300 --seed 7`` (no store needed), and its survival on the default demo."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from pgf_events.demo import commands_for, plan_cohort
from pgf_events.demo_course import DATA_CUTOFF
from tests.conftest import Pgf

Records = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def cohort() -> dict[str, Records]:
    """Per enrolled subject: kind -> the fields of every record command (corrections ignored)."""
    out: dict[str, Records] = {}
    for s in plan_cohort(300, 7):
        if s.failure is not None:
            continue
        records: Records = defaultdict(list)
        by_version: dict[str, dict[str, Any]] = {}
        for version, c in enumerate(commands_for(s), start=1):
            if c.action == "record":
                fields = dict(c.fields)
                records[c.kind].append(fields)
                by_version[f"{s.code}#{version}"] = fields
            elif c.action == "correct":  # the effective record, as the engine sees it
                by_version[c.ref].update(c.fields)
        out[s.code] = records
    return out


def _day(value: str) -> date:
    return date.fromisoformat(value[:10])


def test_the_model_is_deterministic_per_seed() -> None:
    def lines(seed: int) -> list[Any]:
        return [(c.subject, c.kind, sorted(c.fields.items())) for s in plan_cohort(12, seed) for c in commands_for(s)]

    assert lines(3) == lines(3) and lines(3) != lines(4)


def test_platelet_transfusions_raise_the_next_count_and_some_patients_are_refractory(cohort) -> None:
    increments = []
    for r in cohort.values():
        labs = sorted((_day(x["date"]), x["plt"]) for x in r["lab"])
        for tx in (_day(t["date"]) for t in r["transfusion"] if t["product"] == "platelets"):
            before = [v for d, v in labs if d == tx]
            after = [(d, v) for d, v in labs if 0 < (d - tx).days <= 2]
            if before and after:
                increments.append(after[0][1] - before[0])
    assert len(increments) > 200
    increments.sort()
    assert increments[len(increments) // 2] >= 8  # median rise 1-2 days after one apheresis unit
    assert sum(1 for i in increments if i < 5) / len(increments) > 0.05  # refractory transfusions


def test_recoveries_spread_over_weeks_with_late_responders(cohort) -> None:
    from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint  # noqa: PLC0415
    from pgf_events.domain.rules.response import lineage_outcomes  # noqa: PLC0415
    from pgf_events.protocol import DEFAULT_PROTOCOL  # noqa: PLC0415

    days = []
    for code, r in cohort.items():
        d1 = min(_day(i["date"]) for i in r["infusion"])
        labs = [LabPoint(_day(x["date"]), f"{code}#{n}", plt=x["plt"]) for n, x in enumerate(r["lab"])]
        tx = [TransfusionPoint(_day(t["date"]), "t", t["product"]) for t in r["transfusion"]]
        last = max(_day(x["date"]) for x in r["lab"])
        out = lineage_outcomes(labs, tx, DEFAULT_PROTOCOL, transplant_day=d1, msc_d1=d1, as_of=last)
        if out.plt is not None and out.plt.response in ("CR", "PR"):
            days.append((out.plt.day - d1).days + 1)
    assert len(days) > 100
    assert sum(1 for d in days if d <= 28) > 20 and sum(1 for d in days if d > 56) >= 10


def test_secondary_pgf_is_sometimes_diagnosed_after_day_45(cohort) -> None:
    late = 0
    for r in cohort.values():
        enrol, register = r["enrol"][0], r["register"][0]
        gap = (_day(enrol["pgf_diagnosis_date"]) - _day(register["transplant_date"])).days
        assert gap >= 28
        late += enrol["pgf_type"] == "secondary" and gap > 45
    assert late >= 20


def test_cmv_is_common_after_haploidentical_transplant_and_ebv_sometimes(cohort) -> None:
    def share(organism: str, haplo: bool) -> float:
        group = [r for r in cohort.values() if (r["register"][0]["donor_type"] == "haploidentical") == haplo]
        return sum(1 for r in group if any(i.get("organism") == organism for i in r["infection"])) / len(group)

    assert 0.5 <= share("cytomegalovirus", True) <= 0.8 and share("cytomegalovirus", False) < 0.5
    assert 0.05 <= share("Epstein-Barr virus", True) <= 0.3


def test_infection_deaths_have_a_grade_5_infection_and_a_fatal_ae(cohort) -> None:
    infection_deaths = 0
    for r in cohort.values():
        if not r["death"]:
            continue
        cause = r["death"][0]["cause"]
        if cause in ("septic shock", "invasive pulmonary aspergillosis", "cytomegalovirus pneumonia"):
            infection_deaths += 1
            assert any(i["grade"] == 5 for i in r["infection"]), cause
        if not cause.startswith("relapse"):
            assert any(a["grade"] == 5 for a in r["ae"]), cause
    assert infection_deaths >= 10


def test_infusion_reactions_are_uncommon_and_mostly_mild(cohort) -> None:
    infusions = sum(len(r["infusion"]) for r in cohort.values())
    reactions = [a for r in cohort.values() for a in r["ae"] if a["term"] == "infusion related reaction"]
    assert 0.005 <= len(reactions) / infusions <= 0.06
    assert sum(1 for a in reactions if a["grade"] == 1) > len(reactions) / 2


def test_some_patients_are_lost_or_censored_and_some_episodes_precede_d1(cohort) -> None:
    short = [c for c, r in cohort.items() if not r["death"] and not r["withdraw"]
             and (max(_day(x["date"]) for x in r["contact"]) - min(_day(i["date"]) for i in r["infusion"])).days < 365]
    at_cutoff = [c for c in short if max(_day(x["date"]) for x in cohort[c]["contact"]) == DATA_CUTOFF]
    assert len(at_cutoff) >= 20 and len(short) - len(at_cutoff) >= 5  # administrative vs lost to follow-up
    before_d1 = [c for c, r in cohort.items()
                 if any(_day(i["onset"]) < min(_day(x["date"]) for x in r["infusion"]) for i in r["infection"])]
    gvhd_before = [c for c, r in cohort.items()
                   if any(_day(g["date"]) < min(_day(x["date"]) for x in r["infusion"]) for g in r["gvhd"])]
    assert len(before_d1) >= 30 and len(gvhd_before) >= 10


def test_default_demo_survival_and_relapse_are_in_the_published_range(tmp_path: Any) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/d.db")
    pgf.ok("demo", "--patients", "300", "--seed", "7")
    summary = json.loads(pgf.ok("report", "survival", "--json").stdout)["summary"]
    assert 0.55 <= summary["os_1y"]["estimate"] <= 0.75
    assert 0.08 <= summary["relapse_1y"]["estimate"] <= 0.3
    gvhd = json.loads(pgf.ok("report", "gvhd", "--json").stdout)["summary"]
    assert 0.15 <= gvhd["chronic_cumulative_incidence"]["estimate"] <= 0.45
    assert not math.isnan(gvhd["acute_2_4"]["estimate"])
