"""The protocol object: defaults from docs/rules.md, TOML overrides, versioning."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgf_events.domain.errors import ProtocolError
from pgf_events.protocol import BASE_VERSION, Protocol


def test_defaults_match_clinical_rules() -> None:
    p = Protocol()
    assert (p.kps_min_exclusive, p.dose_window_days, p.min_dose_gap_days, p.dose_tolerance) == (60, 2, 5, 0.10)
    assert (p.endpoint_anchor, p.anc_comparator, p.rbc_transfusion_free_days) == ("first_infusion", ">", 28)
    assert (p.nr_evaluation_day, p.min_counts_in_window, p.survival_origin) == (56, 3, "first_infusion")
    assert (p.consecutive_mode, p.planned_doses, p.dose_cells_per_kg) == ("measurements", 4, 1e6)
    assert p.version == BASE_VERSION


def test_protocol_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Protocol().planned_doses = 5  # type: ignore[misc]


def test_toml_overrides_get_a_derived_version(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('anc_comparator = ">="\nrbc_transfusion_free_days = 30\n')
    p = Protocol.from_toml(path)
    assert p.anc_comparator == ">=" and p.rbc_transfusion_free_days == 30
    assert p.version.startswith(BASE_VERSION + "+") and p.digest != Protocol().digest


def test_toml_may_name_its_version_and_use_a_table(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[protocol]\nversion = "amendment-2"\nplanned_doses = 6\n')
    assert Protocol.from_toml(path).version == "amendment-2"


@pytest.mark.parametrize("text,contains", [
    ("anc_threshhold = 0.5\n", "unknown protocol parameter"),
    ('anc_comparator = "=>"\n', "protocol parameter anc_comparator must be one of >, >=, not '=>'"),
    ('planned_doses = "four"\n', "protocol parameter planned_doses must be a whole number, not 'four'"),
    ("dose_window_days = -1\n", "invalid protocol parameter"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_protocol_files_are_rejected(tmp_path: Path, text: str, contains: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ProtocolError, match=contains):
        Protocol.from_toml(path)


def test_missing_protocol_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="does not exist"):
        Protocol.from_toml(tmp_path / "nope.toml")
