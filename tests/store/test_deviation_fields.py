"""Events stored before issue 13 have no ``deviation``/``acknowledged`` fields: they still load and replay."""

from __future__ import annotations

import json

from pgf_events.application import TrialConduct
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.helpers import USER, enrolled, infuse


def test_events_without_the_deviation_fields_load_and_replay() -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    enrolled(app, "S001")
    infuse(app, "S001", "2025-02-25")
    infuse(app, "S001", "2025-02-28", deviation="travelling")
    app.correct("S001#5", {"cells": 6.2e7}, "re-read", user=USER)
    stored = app.recorder.select_events(app.patient_id("S001"))
    old = []
    for s in stored:
        state = json.loads(s.state)
        state.pop("deviation", None)  # as written before the fields existed
        state.pop("acknowledged", None)
        old.append(type(s)(s.originator_id, s.originator_version, s.topic, json.dumps(state).encode()))
    events = [app.mapper.to_domain_event(s) for s in old]
    assert [getattr(e, "deviation", "missing") for e in events[4:]] == [None, None, None]
    patient = None
    for event in events:
        patient = event.mutate(patient)
    assert patient is not None and patient.acknowledged == {}
    assert patient.entries[5].record.cells == 6.2e7
    app.close()
