"""The dashboard's figures from a demo cohort's read models show the reports' numbers: CONSORT
counts, the at-risk column at the horizon, the curves' heights there, one lane per treated patient;
and an empty store and a single patient render."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.demo import commands_for, plan_cohort
from pgf_events.projections.store import ProjectionStore
from pgf_events.protocol import Protocol
from pgf_events.store import parse_url
from pgf_events.web.cohort_figures import REPORTS, consort, dashboard_figures
from tests.figures.svgparse import Plot, find, parse, steps, vertices


def _slices(url: str, patients: int) -> dict[str, list[dict[str, Any]]]:
    app = TrialConduct(parse_url(url))
    try:
        for subject in plan_cohort(patients, seed=11):
            app.execute(commands_for(subject), user=app.acting_user())
        store = ProjectionStore(app)
        store.catch_up()
        return {n: store.rows(n) for n in REPORTS}
    finally:
        app.close()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    slices = _slices(f"sqlite:///{tmp_path_factory.mktemp('cohort')}/c.db", 24)
    yield slices, dashboard_figures(slices, Protocol(), patient_href=lambda s: f"/patients/{s}")


def _curve_level(root: ET.Element, series: str, day: float) -> float:
    plot = Plot(root)
    (g,) = [g for g in find(root, "g", "curve") if g.get("data-series") == series]
    runs = list(steps(vertices(find(g, "path", "line")[0].get("d", ""))))
    return plot.data_y([y for x, y in runs if x <= plot.px(day) + 1e-6][-1])


def test_consort_shows_the_eligibility_reports_counts(cohort) -> None:
    _, figs = cohort
    s = figs["summaries"]["eligibility"]
    stages = {g.get("data-label"): int(g.get("data-n", "")) for g in find(parse(figs["consort"]), "g", "stage")}
    assert stages["Screened"] == s["screened"] and stages["Eligible"] == s["eligible"]
    assert stages["Enrolled"] == s["enrolled"] and stages["Treated with MSC"] == s["treated"]
    assert stages["Evaluable for the endpoints"] == figs["summaries"]["endpoints"]["evaluable"]


def test_km_at_risk_and_heights_at_the_horizon_are_the_survival_reports(cohort) -> None:
    _, figs = cohort
    s = figs["summaries"]["survival"]
    root = parse(figs["survival"])
    (table,) = find(root, "g", "at-risk")
    at_horizon = [int(t.text or "") for t in find(table, "text") if t.get("data-day") == str(s["horizon_days"])]
    assert at_horizon == [s["os_1y"]["at_risk"], s["dfs_1y"]["at_risk"]]
    assert _curve_level(root, "OS", s["horizon_days"]) == pytest.approx(s["os_1y"]["estimate"], abs=0.005)
    assert _curve_level(root, "DFS", s["horizon_days"]) == pytest.approx(s["dfs_1y"]["estimate"], abs=0.005)


def test_incidence_curves_reach_the_reports_aalen_johansen_estimates(cohort) -> None:
    _, figs = cohort
    h = figs["summaries"]["survival"]["horizon_days"]
    root = parse(figs["incidence"])
    expected = {"Relapse": figs["summaries"]["survival"]["relapse_1y"],
                "Acute GVHD II–IV": figs["summaries"]["gvhd"]["acute_2_4_cumulative_incidence"],
                "Chronic GVHD": figs["summaries"]["gvhd"]["chronic_cumulative_incidence"],
                "First infection": figs["summaries"]["infections"]["cumulative_incidence"]}
    for label, est in expected.items():
        assert _curve_level(root, label, h) == pytest.approx(est["estimate"], abs=0.005)


def test_one_swimmer_lane_per_treated_patient_linking_its_page(cohort) -> None:
    _, figs = cohort
    lanes = find(parse(figs["swimmer"]), "g", "lane")
    assert len(lanes) == figs["summaries"]["dosing"]["treated"]
    for lane in lanes:
        (link,) = find(lane, "a")
        assert link.get("href") == f"/patients/{lane.get('data-subject')}"


def test_every_figure_is_an_accessible_svg_and_the_safety_summary_a_table(cohort) -> None:
    _, figs = cohort
    for name in ("consort", "enrolment", "forest", "survival", "incidence", "swimmer"):
        parse(figs[name])
    assert figs["safety"].count("<table") == 3


def test_an_empty_store_renders_every_figure() -> None:
    figs = dashboard_figures({n: [] for n in REPORTS}, Protocol())
    for name in ("consort", "enrolment", "forest", "survival", "incidence", "swimmer"):
        parse(figs[name])
    assert "no serious adverse events" in figs["safety"]


def test_a_single_patient_renders_every_figure(tmp_path) -> None:
    slices = _slices(f"sqlite:///{tmp_path}/one.db", 1)
    figs = dashboard_figures(slices, Protocol())
    for name in ("consort", "enrolment", "forest", "survival", "incidence", "swimmer"):
        parse(figs[name])


def test_consort_exits_count_each_patient_once() -> None:
    elig = {"registered": 39, "screened": 35, "eligible": 30, "ineligible": 5, "pending": 4, "enrolled": 29,
            "treated": 28, "ineligible_criteria": {"IN2": 1, "EX6": 4}}
    steps, exits = consort(elig, {"evaluable": 27})
    assert [n for _, n in steps] == [39, 35, 30, 29, 28, 27]
    assert exits == [["Not yet screened (n = 4)"], ["Not eligible (n = 5)", "unmet: IN2 1, EX6 4"],
                     ["Eligible, not enrolled (n = 1)"], ["Enrolled, not treated (n = 1)"],
                     ["Treated, no endpoint anchor date (n = 1)"]]
    _, exits = consort({**elig, "pending": 6, "eligible": 28}, {"evaluable": 27})
    assert exits[1][-1] == "Screening incomplete (n = 2)"  # screened, neither eligible nor ineligible yet
