"""v2 rules seen through a patient's derived state and the CLI: clinical dates only, reasons,
discontinued doses, baseline episodes, relapse censoring, the cohort cut-off and day numbers."""

from __future__ import annotations

import json

import pytest

from pgf_events.application import TrialConduct
from tests.conftest import Pgf, enrol_via_cli
from tests.helpers import USER, infuse
from tests.projections.common import assert_status_keys, lab, state_of, treated


def _record(app: TrialConduct, kind: str, fields: dict, subject: str = "S001") -> str:
    return app.record(kind, subject, fields, user=USER).ref


def test_awareness_after_the_last_contact_sets_neither_cutoff_nor_last_alive(app: TrialConduct) -> None:
    treated(app)  # D1 2025-03-01
    _record(app, "contact", {"date": "2025-04-10", "status": "alive"})
    _record(app, "ae", {"onset": "2025-04-01", "term": "pneumonia", "grade": 3, "serious": ["hospitalisation"],
                        "aware": "2025-05-01T10:00"})
    doc = state_of(app).as_json()
    assert doc["evaluation_date"] == "2025-04-10"
    assert doc["survival"]["last_alive_date"] == "2025-04-10"
    assert doc["survival"]["os"] == {"time": 40, "status": 0, "refs": ["S001#6"]}
    # D57 is 2025-04-26: awareness on 2025-05-01 does not make the patient evaluable
    assert doc["endpoints"]["platelet_response"] is None
    assert doc["endpoints"]["reasons"]["platelet_response"] == "pending"


def test_death_before_d57_is_nr_with_reason_and_open_doses_discontinued(app: TrialConduct) -> None:
    treated(app)
    infuse(app, "S001", "2025-03-08")
    _record(app, "death", {"date": "2025-03-12", "cause": "septic shock"})
    doc = state_of(app).as_json()
    assert_status_keys(doc)
    ep, dosing = doc["endpoints"], doc["dosing"]
    assert ep["platelet_response"] == "NR" and ep["platelet_response_date"] is None
    assert ep["reasons"] == {"neutrophil_engraftment": "died", "platelet_response": "died", "rbc_recovery": "died"}
    assert (dosing["given"], dosing["discontinued"], dosing["missed"], dosing["pending"]) == (2, 2, 0, 0)
    assert [d["status"] for d in dosing["doses"]] == ["on_time", "on_time", "discontinued", "discontinued"]
    assert [d["msc_day"] for d in dosing["doses"]] == [1, 8, 15, 22]


def test_endpoint_dates_carry_the_msc_d_number(app: TrialConduct) -> None:
    treated(app)  # D1 2025-03-01
    for day in ("2025-03-12", "2025-03-13", "2025-03-14"):
        lab(app, day, anc=0.9)
    anc = state_of(app).as_json()["endpoints"]["neutrophil_engraftment"]
    assert (anc["date"], anc["msc_day"], anc["days_since_msc_d1"]) == ("2025-03-12", 12, 11)


def test_baseline_infection_and_gvhd_are_prevalent_not_incident(app: TrialConduct) -> None:
    treated(app)  # D1 2025-03-01, enrolled 2025-02-24
    _record(app, "infection", {"onset": "2025-02-26", "site": "lung", "grade": 3})
    _record(app, "gvhd", {"date": "2025-02-27", "skin_bsa": 60, "bilirubin": 10, "bilirubin_unit": "µmol/L", "upper_gi": "no", "stool_ml": 0})
    _record(app, "infection", {"onset": "2025-03-20", "site": "blood", "grade": 3, "organism": "CMV"})
    doc = state_of(app).as_json()
    assert doc["infections"] == 1 and [e["onset"] for e in doc["infection_episodes"]] == ["2025-03-20"]
    assert [e["onset"] for e in doc["baseline_infections"]] == ["2025-02-26"]
    assert doc["gvhd"]["acute_max_grade"] is None and doc["gvhd"]["acute_2_4_incidence"]["status"] == 0
    assert doc["gvhd"]["baseline"] == [{"date": "2025-02-27", "type": "acute", "grade": 2, "refs": ["S001#7"]}]


def test_relapse_incidence_is_censored_at_the_last_disease_assessment(app: TrialConduct) -> None:
    treated(app)
    _record(app, "contact", {"date": "2025-04-30", "status": "alive", "disease": "free"})
    _record(app, "contact", {"date": "2025-06-29", "status": "alive"})  # alive, disease not assessed
    survival = state_of(app).as_json()["survival"]
    assert survival["last_disease_assessment_date"] == "2025-04-30"
    assert survival["relapse"] == {"time": 60, "status": 0, "refs": ["S001#6"]}
    assert survival["os"]["time"] == 120
    tx = survival["from_transplant"]
    assert tx["os"]["entry"] == 50 and tx["delayed_entry"] is True  # transplant 2025-01-10 -> D1 2025-03-01


def _cli_patient(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-03-01", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-02", "--plt", "60")
    pgf.ok("record", "lab", "S001", "--date", "2025-03-09", "--plt", "70")
    pgf.ok("record", "contact", "S001", "--date", "2025-06-01", "--status", "alive")


def test_status_cutoff_ignores_later_facts_and_closes_windows(pgf: Pgf) -> None:
    _cli_patient(pgf)
    now = json.loads(pgf.ok("status", "S001", "--json").stdout)
    assert now["endpoints"]["platelet_response"] == "CR" and now["dosing"]["missed"] == 3
    cut = json.loads(pgf.ok("status", "S001", "--json", "--cutoff", "2025-03-05").stdout)
    assert cut["cutoff"] == "2025-03-05" and cut["evaluation_date"] == "2025-03-05"
    assert cut["endpoints"]["platelet_response"] is None  # the run ends on 2025-03-09, after the cut-off
    assert cut["survival"]["last_alive_date"] == "2025-03-02"
    assert cut["dosing"]["pending"] == 3
    later = json.loads(pgf.ok("status", "S001", "--json", "--cutoff", "2025-05-01").stdout)
    assert later["dosing"]["missed"] == 3 and later["survival"]["last_alive_date"] == "2025-03-09"
    assert "data cut-off 2025-03-05" in pgf.ok("status", "S001", "--cutoff", "2025-03-05").stdout


def test_report_cutoff_and_as_of_are_independent(pgf: Pgf) -> None:
    _cli_patient(pgf)
    doc = json.loads(pgf.ok("report", "endpoints", "--json", "--cutoff", "2025-03-05").stdout)
    assert doc["cutoff"] == "2025-03-05" and doc["rows"][0]["platelet_response"] is None
    both = json.loads(pgf.ok("report", "survival", "--json", "--cutoff", "2025-03-05",
                             "--as-of", "2999-01-01").stdout)
    assert both["cutoff"] == "2025-03-05" and both["rows"][0]["last_alive_date"] == "2025-03-02"
    before = json.loads(pgf.ok("report", "endpoints", "--json", "--cutoff", "2025-01-01").stdout)
    assert before["rows"] == []  # registered after the cut-off: not yet in the cohort
    pgf.rejected("report", "endpoints", "--cutoff", "2025-13-01", contains="not a real calendar date")
    pgf.rejected("status", "S001", "--cutoff", "2025-01-01", contains="after the data cut-off")
    assert "entered the trial on 2025-02-18" in pgf("status", "S001", "--cutoff", "2025-01-01").stderr


@pytest.mark.parametrize("name", ["eligibility", "dosing", "endpoints", "safety", "survival", "gvhd", "infections",
                                  "deviations"])
def test_every_report_takes_a_cutoff(pgf: Pgf, name: str) -> None:
    _cli_patient(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-03-04", "--cells", "6.1e7", "--weight-kg", "61",
           "--deviation", "given early by the site")
    doc = json.loads(pgf.ok("report", name, "--json", "--cutoff", "2025-03-03").stdout)
    assert doc["cutoff"] == "2025-03-03"
    if name == "deviations":  # the infusion of 2025-03-04 is after the cut-off
        assert all(r["date"] <= "2025-03-03" for r in doc["rows"])
        later = json.loads(pgf.ok("report", name, "--json", "--cutoff", "2025-03-05").stdout)
        assert len(later["rows"]) > len(doc["rows"])
    assert "data cut-off 2025-03-03" in pgf.ok("report", name, "--cutoff", "2025-03-03").stdout


def test_v1_protocol_is_selectable_by_name(pgf: Pgf) -> None:
    _cli_patient(pgf)
    v1 = json.loads(pgf.ok("--protocol", "v1", "status", "S001", "--json").stdout)
    assert v1["protocol_version"] == "NCT06171906-v1" and v1["endpoints"]["platelet_response"] == "NR"
    v2 = json.loads(pgf.ok("status", "S001", "--json").stdout)
    assert v2["protocol_version"] == "NCT06171906-v2" and v2["endpoints"]["platelet_response"] == "CR"
    pgf.rejected("--protocol", "v3", "status", "S001", contains="does not exist")
