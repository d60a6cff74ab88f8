"""Law (hypothesis): what ``pgf record``'s echo compares, derived alone (``derive_echo``), is the
whole derivation's (``derive_patient(...).as_json()``, what ``pgf status`` shows) on every key it
keeps, after every event of random histories (labs, infusions, transfusions, contacts, deaths,
withdrawals, corrections and voids), so the echo's lines are those the whole status gives."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgf_events.application import TrialConduct
from pgf_events.domain.errors import PgfError
from pgf_events.projections.changes import changes
from pgf_events.projections.derive import derive_echo, derive_patient
from pgf_events.protocol import DEFAULT_PROTOCOL, Protocol
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.helpers import enrolled, infuse
from tests.projections.test_hemogram_inputs import V1, _act, hemogram_actions
from tests.projections.test_property import _log


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hemogram_actions, min_size=20, max_size=60), st.sampled_from([DEFAULT_PROTOCOL, V1]))
def test_the_echo_derives_what_the_status_shows(history: list[tuple[Any, ...]], params: Protocol) -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    enrolled(app, "S001")
    infuse(app, "S001", "2025-03-01")
    for action in history:
        with contextlib.suppress(PgfError):  # a rejected command writes nothing
            _act(app, action)
    streams: dict[Any, list[Any]] = {}
    for event in _log(app):
        streams.setdefault(event.originator_id, []).append(event)
    for events in streams.values():
        patient, before_echo, before_full = None, None, None
        for event in events:
            patient = event.mutate(patient)
            echo, full = derive_echo(patient, params), derive_patient(patient, params).as_json()
            assert echo == {key: ({"status": full[key]["status"]} if key == "eligibility" else full[key])
                            for key in echo}
            assert changes(before_echo, echo) == changes(before_full, full)
            before_echo, before_full = echo, full
