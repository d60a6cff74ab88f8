"""The course figure is a pure function: well-formed SVG, MSC D-numbers (no D0), every mark placed,
text escaped, and a panel without values says so."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import attrs

from pgf_events.web.figures.course import Course, course_svg, msc_day

NS = {"s": "http://www.w3.org/2000/svg"}


def course(**overrides: object) -> Course:
    base = Course(
        subject="S001<script>", transplant=date(2025, 1, 10), d1=date(2025, 2, 25),
        labs=[(date(2025, 2, 24), 0.2, 61.0, 12.0), (date(2025, 3, 3), 0.6, None, 25.0)],
        infusions=[(date(2025, 2, 25), "S001#5"), (date(2025, 3, 4), "S001#9")],
        transfusions=[(date(2025, 2, 27), "rbc"), (date(2025, 3, 1), "platelets")],
        endpoints=[("neutrophil engraftment", date(2025, 3, 3), "anc")], death=date(2025, 4, 1),
        thresholds={"anc": [(0.5, "> 0.5")], "hb": [(70.0, "≥ 70")], "plt": [(20.0, "PR ≥ 20")]})
    return attrs.evolve(base, **overrides)


def test_msc_days_skip_zero_and_fall_back_to_days_from_transplant() -> None:
    d1 = date(2025, 2, 25)
    assert [msc_day(date(2025, 2, d), d1, date(2025, 1, 10)) for d in (24, 25, 26)] == ["D-1", "D1", "D2"]
    assert msc_day(date(2025, 2, 24), None, date(2025, 1, 10)) == "day +45"


def test_the_svg_is_well_formed_escaped_and_places_every_mark() -> None:
    svg = course_svg(course())
    root = ET.fromstring(svg)  # well-formed XML
    assert "<script>" not in svg and "S001&lt;script&gt;" in svg
    assert root.find("s:title", NS).text == "S001<script>: haematology course"  # type: ignore[union-attr]
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(t.startswith("MSC infusion") for t in titles) == 2 * 3  # each infusion in each panel
    assert any(t.startswith("rbc transfusion") for t in titles) and any(t.startswith("platelets") for t in titles)
    assert any(t.startswith("neutrophil engraftment: 2025-03-03 (D7)") for t in titles)
    assert sum(t.startswith("death: 2025-04-01") for t in titles) == 3
    assert len(root.findall(".//s:g[@class='panel-hb']/s:circle", NS)) == 1  # the missing Hb is not drawn


def test_a_panel_without_values_says_so() -> None:
    svg = course_svg(course(labs=[], d1=None, infusions=[], endpoints=[], death=None))
    assert svg.count("no values recorded") == 3 and "days from transplant" in svg
