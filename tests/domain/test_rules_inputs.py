"""Input records for the rules (docs/rules.md, "Laboratory conventions" units)."""

from datetime import date

import pytest

from pgf_events.domain.rules.inputs import InfusionPoint, LabPoint, TransfusionPoint, days_between


def test_days_between_is_signed_end_minus_start():
    assert days_between(date(2025, 1, 1), date(2025, 1, 8)) == 7
    assert days_between(date(2025, 1, 8), date(2025, 1, 1)) == -7


def test_lab_point_values_default_to_not_measured():
    point = LabPoint(date(2025, 1, 1), "S001#3", anc=0.4)
    assert (point.plt, point.hb) == (None, None)


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), "0.5"])
def test_lab_point_rejects_negative_or_non_numeric_values(value):
    with pytest.raises((ValueError, TypeError)):
        LabPoint(date(2025, 1, 1), "S001#3", anc=value)


def test_transfusion_product_must_be_rbc_or_platelets():
    TransfusionPoint(date(2025, 1, 1), "S001#4", "rbc")
    with pytest.raises(ValueError):
        TransfusionPoint(date(2025, 1, 1), "S001#4", "plasma")


def test_infusion_cells_per_kg_divides_by_recorded_weight():
    # 6.5e7 cells / 65 kg = 1e6 cells/kg
    assert InfusionPoint(date(2025, 1, 1), "S001#5", 6.5e7, 65.0).cells_per_kg == 1e6


@pytest.mark.parametrize("cells, weight", [(0.0, 70.0), (7e7, 0.0), (7e7, -70.0)])
def test_infusion_needs_positive_cells_and_weight(cells, weight):
    with pytest.raises(ValueError):
        InfusionPoint(date(2025, 1, 1), "S001#5", cells, weight)


def test_inputs_are_frozen():
    point = LabPoint(date(2025, 1, 1), "S001#3", anc=0.4)
    with pytest.raises(AttributeError):
        point.anc = 0.6  # type: ignore[misc]
