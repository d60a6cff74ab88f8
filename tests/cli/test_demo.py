"""``pgf demo``: a synthetic cohort recorded through the coordinator's command path.

It must never be rejected by the rules, be identical for a seed, refuse to write into a store
that already holds its subjects, and look like the trial (enrolled patients, screen failures,
corrections and voids pointing at the right events).
"""

from __future__ import annotations

import json
import re
import time
from datetime import date
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.domain import values as vo
from pgf_events.domain.kinds import KINDS
from pgf_events.store import parse_url
from tests.conftest import REGISTER, Pgf, fingerprint


def _subjects(url: str) -> list[str]:
    app = TrialConduct(parse_url(url))
    try:
        return app.subjects()
    finally:
        app.close()


def _histories(pgf: Pgf) -> dict[str, list[dict[str, Any]]]:
    """Every subject's ``pgf history --json`` without the recording times (they are the run's clock)."""
    out = {}
    for subject in _subjects(pgf.url):
        events = json.loads(pgf.ok("history", subject, "--json").stdout)["events"]
        out[subject] = [{k: v for k, v in e.items() if k != "recorded_at"} for e in events]
    return out


def _count(stdout: str, label: str) -> int:
    match = re.search(rf"^\s*{label}\s+(\d+)", stdout, re.MULTILINE)
    assert match, (label, stdout)
    return int(match.group(1))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pgf, str, float]:
    """The default 68-patient demo, recorded once for the tests that inspect a full cohort."""
    pgf = Pgf(f"sqlite:///{tmp_path_factory.mktemp('demo')}/d.db")
    started = time.perf_counter()
    result = pgf.ok("demo")
    return pgf, result.stdout, time.perf_counter() - started


def test_small_demo_reports_its_cohort(tmp_path: Any) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/d.db")
    result = pgf.ok("demo", "--patients", "6", "--seed", "3")
    assert _count(result.stdout, "patients enrolled") == 6
    assert _count(result.stdout, "screen failures") == 1
    total = _count(result.stdout, "total")
    assert total == fingerprint(pgf.url)[0]
    assert re.search(r"wall time [\d.]+ s, \d+ events/s", result.stdout)
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert set(_subjects(pgf.url)) == {"S001", "S002", "S003", "S004", "S005", "S006", "SF01"}


def test_same_seed_gives_identical_histories(tmp_path: Any) -> None:
    first, second, other = (Pgf(f"sqlite:///{tmp_path}/{name}.db") for name in ("a", "b", "c"))
    for pgf, seed in ((first, "3"), (second, "3"), (other, "4")):
        pgf.ok("demo", "--patients", "6", "--seed", seed)
    histories = _histories(first)
    assert sum(len(events) for events in histories.values()) > 100
    assert histories == _histories(second)
    assert histories != _histories(other)


def test_demo_into_a_store_holding_its_subjects_writes_nothing(tmp_path: Any) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/d.db")
    pgf.ok("demo", "--patients", "6", "--seed", "3")
    before = fingerprint(pgf.url)
    again = pgf.ok("demo", "--patients", "6", "--seed", "3")  # re-running the README's first command
    assert "already holds a demo cohort" in again.stderr and "--db another.db" in again.stderr
    assert "endpoints report" in again.stdout
    assert fingerprint(pgf.url) == before


def test_demo_into_a_store_holding_other_patients_writes_nothing(tmp_path: Any) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/d.db")
    pgf.ok("demo", "--patients", "6", "--seed", "3")
    pgf.ok("record", "register", "X001", *REGISTER)
    pgf.rejected("demo", "--patients", "6", "--seed", "3", contains="not demo subjects (X001)")


def test_one_existing_subject_code_blocks_the_whole_demo(tmp_path: Any) -> None:
    pgf = Pgf(f"sqlite:///{tmp_path}/d.db")
    pgf.ok("record", "register", "SF01", *REGISTER)
    pgf.rejected("demo", "--patients", "6", contains="SF01")
    assert _subjects(pgf.url) == ["SF01"]


def test_default_demo_records_68_enrolled_patients(default_run: tuple[Pgf, str, float]) -> None:
    pgf, stdout, seconds = default_run
    assert _count(stdout, "patients enrolled") == 68
    assert _count(stdout, "screen failures") == 10
    assert _count(stdout, "total") == fingerprint(pgf.url)[0]
    for kind in ("infusion", "lab", "transfusion", "ae", "infection", "gvhd", "contact", "death", "correct", "void"):
        assert _count(stdout, kind) > 0, kind
    assert seconds < 60


def test_default_cohort_is_plausible(default_run: tuple[Pgf, str, float]) -> None:
    pgf, _, _ = default_run
    app = TrialConduct(parse_url(pgf.url))
    try:
        subjects = app.subjects()
        enrolled = [s for s in subjects if s.startswith("S0")]
        assert sorted(enrolled) == [f"S{n:03d}" for n in range(1, 69)]
        deaths = 0
        for subject in subjects:
            patient = app.patient(subject)
            eligibility = patient.eligibility(app.protocol)
            if subject.startswith("SF"):
                assert eligibility.status == "ineligible" and patient.enrolment is None
                continue
            assert eligibility.status == "eligible" and patient.enrolment is not None
            infusions = patient.active(vo.Infusion)
            assert 1 <= len(infusions) <= 4
            for _, infusion in infusions:
                assert 0.8e6 <= infusion.cells_per_kg <= 1.2e6
            dates = [r.clinical_date for _, r in patient.clinical_records()]
            assert max(dates) < date(2026, 7, 1)
            assert date(2024, 1, 1) <= patient.registration.transplant_date <= date(2025, 3, 31)
            deaths += patient.death is not None
        assert 0.2 <= deaths / 68 <= 0.5  # PGF: 1-year OS ~55-70% (docs/demo.md)
    finally:
        app.close()


def test_corrections_and_voids_point_at_the_events_they_fix(default_run: tuple[Pgf, str, float]) -> None:
    pgf, _, _ = default_run
    fixes = 0
    for events in _histories(pgf).values():
        by_ref = {e["ref"]: e for e in events}
        for event in events:
            if event["kind"] not in ("correct", "void"):
                continue
            fixes += 1
            target = by_ref[event["supersedes"]]
            assert target["version"] < event["version"] and event["reason"]
            if event["kind"] == "correct":
                assert set(event["data"]) <= set(KINDS[target["kind"]].record.field_names())
                assert all(change["old"] != change["new"] for change in event["data"].values())
            else:
                assert target["kind"] in ("lab", "transfusion") and "voided by" in target["status"]
    assert fixes >= 5


def test_small_demo_on_every_backend(pgf_any: Pgf) -> None:
    result = pgf_any.ok("demo", "--patients", "3", "--seed", "9")
    assert _count(result.stdout, "patients enrolled") == 3


def test_demo_as_jsonl_imports_to_the_same_histories(tmp_path) -> None:
    from tests.conftest import Pgf

    recorded = Pgf(f"sqlite:///{tmp_path}/rec.db")
    recorded.ok("demo", "--patients", "3", "--seed", "5")  # 3 enrolled, round(0.45) = 0 screen failures
    path = tmp_path / "cohort.jsonl"
    imported = Pgf(f"sqlite:///{tmp_path}/imp.db")
    imported.ok("demo", "--patients", "3", "--seed", "5", "--jsonl", str(path))
    assert not (tmp_path / "imp.db").exists()  # --jsonl records nothing
    imported.ok("import", str(path))

    def strip(pgf: Pgf, subject: str) -> list[dict]:
        import json

        events = json.loads(pgf.ok("history", subject, "--json").stdout)["events"]
        return [{k: v for k, v in e.items() if k != "recorded_at"} for e in events]

    for subject in ("S001", "S002", "S003"):
        assert strip(recorded, subject) == strip(imported, subject)
