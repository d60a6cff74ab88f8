"""The lab record's straight-line parse (``LabPanel.from_input`` for plain input) against the general
path (:meth:`Record.from_input`): the same record or the same error, for any input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.domain.errors import PgfError
from pgf_events.domain.record import Record
from pgf_events.domain.values import LabPanel

number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                   st.sampled_from([0, 1, 19.9, 20, 2, 250, 250.0001, 100, 100.5, 2000, 1e15, 1e16, 10**400, True]),
                   st.text(max_size=5), st.none())
day = st.one_of(st.sampled_from(["2025-03-01", " 2025-03-01 ", "2025-02-30", "1899-12-31", "not a date", ""]),
                st.none(), st.integers(0, 3))
raw = st.dictionaries(st.sampled_from(["date", "anc", "plt", "hb", "wbc", "bilirubin", "hb_unit", "hb_as_entered",
                                       "bilirubin_unit", "other"]),
                      st.one_of(number, day, st.sampled_from(["g/dL", "g/L", "µmol/L", "7.2 g/dL"])), max_size=7)
plain = st.fixed_dictionaries({"date": day}, optional=dict.fromkeys(("anc", "plt", "hb", "wbc"), number))


def _outcome(parse: Any, data: dict[str, Any]) -> Any:
    try:
        return ("ok", parse(data))
    except PgfError as e:
        return ("error", type(e).__name__, str(e))


@settings(max_examples=600, deadline=None)
@given(data=st.one_of(raw, plain, plain))
def test_the_straight_line_parse_is_the_general_one(data: dict[str, Any]) -> None:
    general = _outcome(lambda d: Record.from_input.__func__(LabPanel, d), data)  # type: ignore[attr-defined]
    assert _outcome(LabPanel.from_input, data) == general
