"""Each figure read back from its SVG: the drawn coordinates are the data's, the text is the
numbers', empty cohorts and a single patient render, and every figure is accessible."""

from __future__ import annotations

from datetime import date

import pytest

from pgf_events.projections.curves import km_curve
from pgf_events.web.figures.curves import curves_figure
from pgf_events.web.figures.enrolment import enrolment_svg
from pgf_events.web.figures.flow import consort_svg
from pgf_events.web.figures.forest import forest_svg
from pgf_events.web.figures.safety import safety_html
from pgf_events.web.figures.svg import SERIES, month_ticks
from pgf_events.web.figures.swimmer import swimmer_svg
from tests.figures.svgparse import Plot, find, parse, steps, texts, vertices


def _curve(label: str, obs: list[tuple[int, int]], ticks: list[float]) -> dict:
    c = km_curve(obs)
    return {"label": label, "time": c["time"], "value": c["surv"], "low": c["low"], "high": c["high"],
            "end": max(t for t, _ in obs), "censored": list(zip(c["censored"], c["censored_surv"], strict=True)),
            "at_risk": [sum(1 for t, _ in obs if t >= tick) for tick in ticks], "note": "x"}


def _level_at(points: list[tuple[float, float]], x: float) -> float:
    """y of a step path at pixel x (the last run starting at or before x)."""
    return [y for start, y in steps(points) if start <= x + 1e-6][-1]


def test_km_steps_are_at_the_event_times_and_heights() -> None:
    obs = [(30, 1), (60, 0), (90, 1), (200, 0), (250, 1), (400, 0)]
    ticks = month_ticks(400)
    svg = curves_figure("km", "KM", "desc", [_curve("OS", obs, ticks)], ticks=ticks, xmax=400, xlabel="m",
                        ylabel="p")
    root = parse(svg)
    plot = Plot(root)
    (line,) = find(root, "path", "line")
    points = vertices(line.get("d", ""))
    # S = 1 to day 30, 5/6 after it, 5/6 * 3/4 after day 90, then * 1/2 after day 250
    expected = [(0, 1.0), (30, 5 / 6), (90, 5 / 6 * 3 / 4), (250, 5 / 6 * 3 / 4 / 2)]
    drawn = [(round(plot.data_x(x)), plot.data_y(y)) for x, y in steps(points)]
    assert [t for t, _ in drawn] == [t for t, _ in expected]
    for (_, got), (_, want) in zip(drawn, expected, strict=True):
        assert got == pytest.approx(want, abs=0.005)
    assert plot.data_x(points[-1][0]) == pytest.approx(400, abs=0.5)  # drawn on to the last follow-up


def test_the_ci_band_contains_the_curve() -> None:
    obs = [(d, d % 3 != 0) for d in range(5, 300, 7)]
    obs = [(t, int(e)) for t, e in obs]
    ticks = month_ticks(300)
    root = parse(curves_figure("km", "KM", "d", [_curve("OS", obs, ticks)], ticks=ticks, xmax=300, xlabel="m",
                               ylabel="p"))
    (line,) = find(root, "path", "line")
    (band,) = find(root, "path", "band")
    line_pts, band_pts = vertices(line.get("d", "")), vertices(band.get("d", ""))
    half = len(line_pts)
    upper, lower = band_pts[:half], list(reversed(band_pts[half:]))
    for x, y in steps(line_pts):
        for probe in (x + 0.05, x + 0.5):
            # SVG y grows downwards: the upper band edge has the smaller y
            assert _level_at(upper, probe) <= y + 1e-6
            assert y <= max(yy for xx, yy in lower if xx <= probe + 1e-6) + 1e-6


def test_at_risk_row_shows_the_given_numbers_under_each_tick() -> None:
    obs = [(30, 1), (100, 0), (200, 1), (380, 0)]
    ticks = month_ticks(380)
    c = _curve("DFS", obs, ticks)
    root = parse(curves_figure("km", "KM", "d", [c], ticks=ticks, xmax=380, xlabel="m", ylabel="p"))
    plot = Plot(root)
    (table,) = find(root, "g", "at-risk")
    cells = [t for t in find(table, "text") if t.get("data-day")]
    assert [int(t.text or "") for t in cells] == c["at_risk"] == [4, 3, 2, 1, 1]
    assert [float(t.get("x", "")) for t in cells] == pytest.approx([plot.px(t) for t in ticks], abs=0.06)


@pytest.mark.parametrize("obs", [[], [(0, 0)], [(12, 1)]])
def test_curves_render_for_empty_and_single_patient_cohorts(obs: list[tuple[int, int]]) -> None:
    ticks = month_ticks(365)
    shown = [_curve("OS", obs, ticks)] if obs else []
    root = parse(curves_figure("km", "KM", "d", shown, ticks=ticks, xmax=365, xlabel="m", ylabel="p"))
    assert len(find(root, "path", "line")) == len(shown)
    if not obs:
        assert "no patients to show" in texts(root)


def test_consort_boxes_carry_the_counts_and_the_exclusions() -> None:
    steps_ = [("Screened", 78), ("Eligible", 68), ("Enrolled", 66), ("Treated", 66), ("Evaluable", 65)]
    exits = [["Not eligible (n = 10)", "unmet: IN2 2, EX1 8"], ["Eligible, not enrolled (n = 2)"], [],
             ["No anchor date (n = 1)"]]
    root = parse(consort_svg(steps_, exits))
    stages = find(root, "g", "stage")
    assert [(g.get("data-label"), int(g.get("data-n", ""))) for g in stages] == steps_
    assert [t for g in stages for t in texts(g) if t.startswith("n = ")] == [f"n = {n}" for _, n in steps_]
    exit_texts = [texts(g) for g in find(root, "g", "exit")]
    assert exit_texts == [e for e in exits if e]
    ys = [float(find(g, "rect")[0].get("y", "")) for g in stages]
    assert ys == sorted(ys)  # top to bottom in flow order
    with pytest.raises(ValueError, match="exit boxes"):
        consort_svg(steps_, exits[:2])


def test_consort_of_nobody() -> None:
    root = parse(consort_svg([("Screened", 0), ("Eligible", 0)], [[]]))
    assert [g.get("data-n") for g in find(root, "g", "stage")] == ["0", "0"]


def test_enrolment_lines_end_at_each_sites_count() -> None:
    data = [("A", date(2025, 1, 5)), ("B", date(2025, 2, 1)), ("A", date(2025, 3, 9)), ("A", date(2025, 3, 20))]
    root = parse(enrolment_svg(data))
    plot = Plot(root)
    ends = {}
    for g in find(root, "g", "curve"):
        pts = vertices(find(g, "path", "line")[0].get("d", ""))
        runs = list(steps(pts))
        ends[g.get("data-series")] = (round(plot.data_y(runs[-1][1])), date.fromordinal(round(plot.data_x(runs[-1][0]))))
    assert ends == {"all sites": (4, date(2025, 3, 20)), "A": (3, date(2025, 3, 20)), "B": (1, date(2025, 2, 1))}
    assert "4 patients enrolled (A 3, B 1)" in (root.find("{http://www.w3.org/2000/svg}desc").text or "")


def test_enrolment_of_nobody_and_of_one() -> None:
    assert "nobody enrolled yet" in texts(parse(enrolment_svg([])))
    root = parse(enrolment_svg([("A", date(2025, 1, 5))]))
    assert len(find(root, "g", "curve")) == 2


def test_forest_points_and_intervals_are_at_the_estimates() -> None:
    items = [{"label": "ANC", "k": 44, "n": 62, "estimate": 0.71, "ci_low": 0.59, "ci_high": 0.81},
             {"label": "OS", "k": None, "n": 68, "estimate": 0.56, "ci_low": 0.43, "ci_high": 0.67},
             {"label": "none yet", "k": 0, "n": 0, "estimate": None, "ci_low": None, "ci_high": None}]
    root = parse(forest_svg(items))
    plot = Plot(root)
    groups = {g.get("data-label"): g for g in find(root, "g", "estimate")}
    for item in items[:2]:
        g = groups[item["label"]]
        (point,) = find(g, "rect", "point")
        assert plot.data_x(float(point.get("x", "")) + 5) == pytest.approx(item["estimate"], abs=0.002)
        (ci,) = find(g, "line", "ci")
        assert plot.data_x(float(ci.get("x1", ""))) == pytest.approx(item["ci_low"], abs=0.002)
        assert plot.data_x(float(ci.get("x2", ""))) == pytest.approx(item["ci_high"], abs=0.002)
    assert "44/62 71% (59%–81%)" in texts(root) and "56% (43%–67%)" in texts(root)
    assert not find(groups["none yet"], "rect") and "0/0 not estimable" in texts(root)
    assert parse(forest_svg([]))  # nothing to show still renders


def test_swimmer_lanes_doses_and_death() -> None:
    lanes = [{"subject": "S001", "end": 30, "doses": [(1, "on_time"), (8, "on_time"), (17, "late")], "died": True,
              "withdrawn": False},
             {"subject": "S002", "end": 200, "doses": [(1, "on_time"), (6, "early")], "died": True, "withdrawn": False},
             {"subject": "S003", "end": 12, "doses": [(1, "on_time")], "died": False, "withdrawn": True}]
    root = parse(swimmer_svg(lanes, [1, 8, 15, 22], xmax=51))
    plot = Plot(root)
    by = {g.get("data-subject"): g for g in find(root, "g", "lane")}
    assert list(by) == ["S001", "S002", "S003"]
    doses = [(plot.data_x(float(c.get("cx", ""))), c.get("class")) for c in find(by["S001"], "circle")]
    assert [round(x) for x, _ in doses] == [1, 8]
    assert [p.get("class") for p in find(by["S001"], "path", "dose")] == ["dose late"]
    assert find(by["S001"], "path", "death") and not find(by["S002"], "path", "death")  # day 200 is off the axis
    (bar,) = find(by["S002"], "line", "follow-up")
    assert plot.data_x(float(bar.get("x2", ""))) == pytest.approx(51, abs=0.1)
    assert find(by["S003"], "line", "withdrawal")
    assert len(find(root, "line", "planned")) == 4


def test_swimmer_of_nobody_and_the_lane_limit() -> None:
    assert "nobody treated yet" in texts(parse(swimmer_svg([], [1, 8])))
    lanes = [{"subject": f"S{i:04d}", "end": 40, "doses": [(1, "on_time")], "died": False, "withdrawn": False}
             for i in range(300)]
    root = parse(swimmer_svg(lanes, [1, 8], limit=50))
    assert len(find(root, "g", "lane")) == 50
    assert any("first 50 of 300" in t for t in texts(root))


def test_series_colours_pass_wcag_graphics_contrast() -> None:
    def luminance(hex_: str) -> float:
        rgb = [int(hex_[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for colour, _ in SERIES:
        assert (1.05) / (luminance(colour) + 0.05) >= 3.0, colour
    assert len({dash for _, dash in SERIES}) == len(SERIES)  # each series differs without colour too


def test_safety_tables_escape_and_count() -> None:
    summary = {"patients_with_ae": {"k": 1, "n": 2, "estimate": 0.5}, "adverse_events": 2,
               "serious_adverse_events": 1, "susars": 0, "clocks": {"met": 0, "missed": 1, "pending": 1},
               "by_term_grade": [{"term": "<b>rash</b>", "grade_1": 1, "grade_2": 0, "grade_3": 1, "grade_4": 0,
                                  "grade_5": 0, "events": 2, "patients": 1}],
               "lab_worsening_by_term_grade": [],
               "saes": [{"subject": "S001", "ref": "S001#9", "term": "sepsis", "grade": 4, "onset": "2025-03-01",
                         "serious": ["hospitalisation"], "related": "unlikely", "susar": False,
                         "clocks": [{"name": "sponsor", "due": "2025-03-02T10:00:00Z", "reported": None,
                                     "met": False},
                                    {"name": "regulator", "due": "2025-03-16T10:00:00Z", "reported": None,
                                     "met": None}]}]}
    html = safety_html(summary, patient_href=lambda s: f"/patients/{s}")
    assert "<b>rash" not in html and "&lt;b&gt;rash&lt;/b&gt;" in html
    assert 'href="/patients/S001"' in html and "due 2025-03-02 10:00 UTC" in html
    assert "<strong>MISSED</strong>" in html and "<strong>pending</strong>" in html
    assert "none recorded" in html  # the empty lab table
    assert html.count('scope="col"') == 8 + 8 + 9
