"""v2 safety and entry rules: expectedness and SUSARs, awareness_missing, CDISC action/outcome,
site-local times, lab values as entered (clinical-rules.md, "Safety" and "Laboratory conventions")."""

from __future__ import annotations

import json

import pytest

from pgf_events.application import TrialConduct
from pgf_events.domain.entries import restore
from pgf_events.domain.errors import ValidationError
from pgf_events.domain.kinds import KINDS
from pgf_events.protocol import Protocol
from tests.conftest import Pgf, enrol_via_cli
from tests.helpers import USER
from tests.projections.common import state_of, treated

SAE = {"onset": "2025-03-10", "term": "pneumonia", "grade": 3, "serious": "hospitalisation", "related": "possible",
       "aware": "2025-03-10T09:00Z"}


def _sae(app: TrialConduct, **extra: object) -> dict:
    app.record("ae", "S001", {**SAE, **extra}, user=USER)
    return state_of(app).as_json()["safety"]["adverse_events"][-1]


@pytest.mark.parametrize("expected,susar,missing", [("yes", False, False), ("no", True, False), (None, True, True)])
def test_susar_needs_unexpected_and_missing_expectedness_counts_as_unexpected(
        app: TrialConduct, expected: str | None, susar: bool, missing: bool) -> None:
    treated(app)
    ae = _sae(app, **({"expected": expected} if expected else {}))
    assert (ae["susar"], ae["expectedness_missing"]) == (susar, missing)
    assert [c["name"] for c in ae["clocks"]] == ["sponsor", "regulator"][: 2 if susar else 1]


def test_unrelated_sae_is_never_a_susar_nor_missing_expectedness(app: TrialConduct) -> None:
    treated(app)
    ae = _sae(app, related="not")
    assert ae["susar"] is False and ae["expectedness_missing"] is False


def test_sae_without_awareness_runs_from_onset_midnight_site_time_and_is_flagged(app: TrialConduct) -> None:
    treated(app)  # site PKU: Asia/Shanghai (UTC+8) by default
    ae = _sae(app, aware=None, expected="yes")
    assert ae["awareness_missing"] is True
    # 2025-03-10 00:00 in Shanghai is 2025-03-09 16:00 UTC; the sponsor is due 24 h later
    assert ae["clocks"][0]["due"] == "2025-03-10T16:00:00Z"


def test_a_time_without_offset_is_site_local_and_stored_in_utc(app: TrialConduct) -> None:
    treated(app)
    ae = _sae(app, aware="2025-03-10T14:00")
    assert ae["aware"] == "2025-03-10T06:00:00Z" and ae["awareness_missing"] is False
    assert _sae(app, aware="2025-03-10T14:00+02:00")["aware"] == "2025-03-10T12:00:00Z"  # an offset is kept
    # an early-morning local time on the onset day is not "before the onset" although UTC is the day before
    assert _sae(app, aware="2025-03-10T07:00")["aware"] == "2025-03-09T23:00:00Z"


def test_site_zones_are_a_protocol_parameter(sqlite_url: str) -> None:
    from pgf_events.store import parse_url  # noqa: PLC0415

    protocol = Protocol.from_mapping({"site_timezones": {"*": "Asia/Shanghai", "PKU": "Europe/London"}})
    app = TrialConduct(parse_url(sqlite_url), protocol)
    try:
        treated(app)
        assert _sae(app, aware="2025-03-10T14:00")["aware"] == "2025-03-10T14:00:00Z"  # GMT in March
    finally:
        app.close()


def test_action_and_outcome_take_cdisc_terms(app: TrialConduct) -> None:
    treated(app)
    ae = _sae(app, action="dose delayed", outcome="recovered-resolved with sequelae")
    assert (ae["action"], ae["outcome"], ae["outcome_term"]) == (
        "DOSE DELAYED", "RECOVERED/RESOLVED WITH SEQUELAE", "RECOVERED/RESOLVED WITH SEQUELAE")
    with pytest.raises(ValidationError, match="--outcome must be one of RECOVERED/RESOLVED"):
        app.record("ae", "S001", {**SAE, "outcome": "better"}, user=USER)
    with pytest.raises(ValidationError, match="--action must be one of DOSE NOT CHANGED"):
        app.record("ae", "S001", {**SAE, "action": "stopped"}, user=USER)


def test_an_old_free_text_outcome_still_loads_and_maps_to_its_term() -> None:
    stored = {"onset": "2025-03-10", "term": "fever", "grade": 1, "serious": [], "related": None, "aware": None,
              "end": None, "outcome": "recovered"}  # an AE stored before v2: no expected/action keys
    ae = restore(KINDS["ae"].record, stored)
    assert (ae.outcome, ae.expected, ae.action) == ("recovered", None, None)
    from pgf_events.domain.vocabulary import ae_outcome_term  # noqa: PLC0415

    assert ae_outcome_term(ae.outcome) == "RECOVERED/RESOLVED" and ae_outcome_term("odd text") is None


def test_cli_records_expectedness_action_and_outcome(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-03-01", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("record", "ae", "S001", "--onset", "2025-03-02", "--term", "fever", "--grade", "2", "--serious",
           "hospitalisation", "--related", "probable", "--expected", "no", "--action", "DOSE NOT CHANGED",
           "--outcome", "RECOVERED/RESOLVED", "--aware", "2025-03-02T10:00")
    doc = json.loads(pgf.ok("status", "S001", "--json").stdout)
    ae = doc["safety"]["adverse_events"][0]
    assert (ae["expected"], ae["action"], ae["susar"], ae["aware"]) == (False, "DOSE NOT CHANGED", True,
                                                                        "2025-03-02T02:00:00Z")
    pgf.rejected("record", "ae", "S001", "--onset", "2025-03-02", "--term", "x", "--grade", "1", "--expected",
                 "maybe", contains="--expected must be yes or no")
    report = json.loads(pgf.ok("report", "safety", "--json").stdout)["summary"]
    assert report["susars"] == 1 and report["expectedness_missing"] == [] and report["awareness_missing"] == []


def test_lab_values_are_kept_as_entered_beside_the_standardised_value(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    ref = pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--hb", "7.2", "--hb-unit", "g/dL", "-q").stdout.strip()
    history = json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]
    assert history[-1]["data"]["hb"] == 72 and history[-1]["data"]["hb_as_entered"] == "7.2 g/dL"
    from pgf_events.exports.sdtm import build_sdtm  # noqa: PLC0415
    from pgf_events.store import parse_url  # noqa: PLC0415

    app = TrialConduct(parse_url(pgf.url))
    try:
        hgb = [r for r in build_sdtm(app)[0]["LB"] if r["LBTESTCD"] == "HGB"]
    finally:
        app.close()
    assert [(r["LBORRES"], r["LBORRESU"], r["LBSTRESN"], r["LBSTRESU"]) for r in hgb] == [("7.2", "g/dL", 72.0, "g/L")]
    pgf.ok("correct", ref, "--set", "hb=75", "--reason", "re-read the report")
    history = json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]
    assert "--hb-as-entered" not in pgf.ok("record", "lab", "--help").stdout
    assert history[-1]["data"]["hb_as_entered"]["new"] == "75 g/L"
