"""``pgf audit exceptions``: one case per kind, and what does not make an exception."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit.exceptions import exception_rows
from pgf_events.protocol import Protocol
from pgf_events.store import parse_url
from tests.conftest import Pgf, enrol_via_cli
from tests.helpers import USER, enrolled, infuse, register


@pytest.fixture
def live() -> Iterator[TrialConduct]:
    """In memory, on the real clock: recorded times are now, so lateness is measured against today."""
    application = TrialConduct(parse_url("memory://"))
    yield application
    application.close()


def of_kind(app: TrialConduct, kind: str) -> list[dict]:
    return exception_rows(app, kinds=(kind,))


def test_late_entries_exceed_the_protocol_parameter(live: TrialConduct) -> None:
    register(live, "S001", date=(datetime.now(UTC) - timedelta(days=2)).date().isoformat())
    today = datetime.now(UTC).date()
    live.record("lab", "S001", {"date": (today - timedelta(days=3)).isoformat(), "anc": 0.4}, user=USER)
    live.record("lab", "S001", {"date": (today - timedelta(days=30)).isoformat(), "anc": 0.5}, user="late.larry")
    (row,) = of_kind(live, "late_entry")
    assert (row["subject"], row["refs"], row["user"], row["reason"]) == ("S001", ["S001#3"], "late.larry", None)
    assert "recorded 30 days later" in row["detail"] and "late_entry_days = 7" in row["detail"]
    assert row["recorded_at"].tzinfo is not None
    live.protocol = Protocol.from_mapping({"late_entry_days": 60})
    assert of_kind(live, "late_entry") == []


def _engrafted(app: TrialConduct) -> None:
    enrolled(app, "S001")
    infuse(app, "S001", "2025-02-25")  # 5: MSC D1, the endpoint anchor
    for _n, (day, anc) in enumerate((("2025-03-01", 0.6), ("2025-03-02", 0.7), ("2025-03-03", 0.8),
                                    ("2025-06-01", 2.0)), start=6):
        app.record("lab", "S001", {"date": day, "anc": anc}, user=USER)  # 6..9


def test_a_lab_edit_near_an_endpoint_is_listed_with_what_it_moved(app: TrialConduct) -> None:
    _engrafted(app)
    app.correct("S001#7", {"anc": "0.4"}, "wrong patient's report", user="monitor1")  # 10
    (row,) = of_kind(app, "endpoint_edit")
    assert (row["refs"], row["user"], row["reason"]) == (["S001#10", "S001#7"], "monitor1", "wrong patient's report")
    assert "within 7 days of neutrophil engraftment on 2025-03-01" in row["detail"]
    assert "neutrophil engraftment 2025-03-01 -> None" in row["detail"]


def test_a_lab_edit_far_from_any_endpoint_is_not_listed(app: TrialConduct) -> None:
    _engrafted(app)
    app.correct("S001#9", {"anc": "2.1"}, "typo", user=USER)
    assert of_kind(app, "endpoint_edit") == []


def test_voiding_a_transfusion_near_an_endpoint_is_listed(app: TrialConduct) -> None:
    _engrafted(app)
    app.record("transfusion", "S001", {"date": "2025-03-04", "product": "platelets"}, user=USER)  # 10
    app.void("S001#10", "entered twice", user=USER)  # 11
    (row,) = of_kind(app, "endpoint_edit")
    assert row["refs"] == ["S001#11", "S001#10"] and "voids S001#10 (transfusion)" in row["detail"]
    assert "endpoints unchanged" in row["detail"]


def test_eligibility_data_edited_after_enrolment(app: TrialConduct) -> None:
    register(app, "S001")
    app.record("consent", "S001", {"date": "2025-02-18"}, user=USER)
    from tests.helpers import ELIGIBLE_SCREEN

    app.record("screen", "S001", ELIGIBLE_SCREEN, user=USER)  # 3
    app.correct("S001#3", {"kps": "90"}, "before enrolment: fine", user=USER)  # 4
    app.record("enrol", "S001", {"date": "2025-02-24"}, user=USER)  # 5
    app.correct("S001#3", {"criterion": ["EX6=yes"]}, "infection found on review", user="monitor1",
                deviation="enrolled with an active infection missed at screening")  # 6
    app.correct("S001#1", {"birth_date": "1950-01-01"}, "passport checked", user="monitor1",
                deviation="age above the limit found after enrolment")  # 7
    app.correct("S001#1", {"weight_kg": "62"}, "scale recalibrated", user="monitor1")  # 8: not eligibility data
    rows = of_kind(app, "eligibility_after_enrolment")
    assert [(r["refs"], r["user"]) for r in rows] == [(["S001#6", "S001#3"], "monitor1"), (["S001#7", "S001#1"], "monitor1")]
    assert "eligibility eligible -> ineligible" in rows[0]["detail"]
    assert rows[1]["reason"] == "passport checked"


def test_dose_or_weight_edited_after_infusion(app: TrialConduct) -> None:
    enrolled(app, "S001")
    infuse(app, "S001", "2025-02-25")  # 5
    infuse(app, "S001", "2025-03-04")  # 6
    app.correct("S001#5", {"cells": "6.3e7"}, "pharmacy recount", user=USER)  # 7
    app.correct("S001#5", {"lot": "LOT-9"}, "label", user=USER)  # 8: not dose or weight
    app.correct("S001#6", {"weight_kg": "58"}, "weighed again", user=USER)  # 9
    app.void("S001#6", "not given", user=USER)  # 10
    rows = of_kind(app, "dose_after_infusion")
    assert [r["refs"] for r in rows] == [["S001#7", "S001#5"], ["S001#9", "S001#6"], ["S001#10", "S001#6"]]
    assert rows[0]["detail"] == "corrects S001#5 (infusion): cells 6.1e+07 -> 6.3e+07"
    assert "weight_kg 61 -> 58" in rows[1]["detail"] and rows[2]["reason"] == "not given"


def test_sae_dates_edited(app: TrialConduct) -> None:
    enrolled(app, "S001")
    sae = {"onset": "2025-03-04", "term": "sepsis", "grade": 4, "serious": "life-threatening",
           "aware": "2025-03-05T09:00"}
    app.record("ae", "S001", sae, user=USER)  # 5
    app.record("ae", "S001", {"onset": "2025-03-04", "term": "rash", "grade": 1}, user=USER)  # 6
    app.correct("S001#5", {"aware": "2025-03-04T22:10"}, "first e-mail from the site", user="monitor1")  # 7
    app.correct("S001#5", {"term": "septic shock"}, "wording", user=USER)  # 8: not a date
    app.correct("S001#6", {"onset": "2025-03-03"}, "not serious", user=USER)  # 9
    (row,) = of_kind(app, "sae_date_edit")
    assert (row["refs"], row["user"], row["reason"]) == (["S001#7", "S001#5"], "monitor1", "first e-mail from the site")
    # times typed without an offset are China Standard Time at the site (UTC+8): stored in UTC
    assert row["detail"] == "corrects S001#5 (ae): aware 2025-03-05T01:00Z -> 2025-03-04T14:10Z"


def test_first_entry_of_a_user_at_a_site(app: TrialConduct) -> None:
    register(app, "S001")  # coordinator1 at PKU
    app.record("consent", "S001", {"date": "2025-02-18"}, user=USER)
    app.record("consent", "S001", {"date": "2025-02-19"}, user="coordinator2")
    register(app, "S002", site="RJH")  # coordinator1, a new site for them
    rows = of_kind(app, "new_user_at_site")
    assert [(r["user"], r["refs"], r["detail"]) for r in rows] == [
        (USER, ["S001#1"], f"first entry by {USER} at site PKU"),
        ("coordinator2", ["S001#3"], "first entry by coordinator2 at site PKU"),
        (USER, ["S002#1"], f"first entry by {USER} at site RJH"),
    ]


def test_exceptions_from_the_cli(pgf: Pgf) -> None:
    enrol_via_cli(pgf)
    pgf.ok("record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61")
    pgf.ok("correct", "S001#5", "--set", "weight_kg=60", "--reason", "weighed again", user="monitor1")
    doc = json.loads(pgf.ok("audit", "exceptions", "--json").stdout)
    assert doc["parameters"] == {"late_entry_days": 7, "endpoint_edit_window_days": 7}
    assert doc["counts"]["dose_after_infusion"] == 1 and doc["counts"]["late_entry"] == 4  # the registration is dated the day it is recorded
    (dose,) = [r for r in doc["exceptions"] if r["kind"] == "dose_after_infusion"]
    assert (dose["refs"], dose["user"], dose["reason"]) == (["S001#6", "S001#5"], "monitor1", "weighed again")
    assert dose["recorded_at"].endswith("Z")
    text = pgf.ok("audit", "exceptions", "--kind", "dose_after_infusion", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["kind"], r["refs"], r["user"]) for r in rows] == [("dose_after_infusion", "S001#6, S001#5", "monitor1")]
    table = pgf.ok("audit", "exceptions", "--kind", "new_user_at_site", "--wide")
    assert "first entry by monitor1 at site PKU" in table.stdout and "exception(s)" in table.stderr
    assert pgf("audit", "exceptions", "--kind", "nonsense").exit_code == 2
