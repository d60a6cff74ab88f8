"""Replay law: folding a patient's stored events reproduces its live state exactly (hypothesis)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgf_events.application import TrialConduct
from pgf_events.domain.errors import PgfError
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.helpers import USER, enrolled

DAYS = [f"2025-03-{d:02d}" for d in range(1, 29)]

actions = st.one_of(
    st.tuples(st.just("lab"), st.sampled_from(DAYS), st.floats(0, 3, allow_nan=False), st.integers(0, 120)),
    st.tuples(st.just("infusion"), st.sampled_from(DAYS), st.floats(3e7, 9e7), st.floats(40, 90)),
    st.tuples(st.just("transfusion"), st.sampled_from(DAYS), st.sampled_from(["rbc", "platelets"]), st.integers(1, 3)),
    st.tuples(st.just("correct"), st.integers(2, 40), st.floats(0, 3, allow_nan=False), st.integers(0, 120)),
    st.tuples(st.just("void"), st.integers(2, 40), st.just(0), st.just(0)),
    st.tuples(st.just("death"), st.sampled_from(DAYS), st.just(0), st.just(0)),
)


def _apply(app: TrialConduct, action: tuple[Any, ...]) -> None:
    kind, a, b, c = action
    if kind == "lab":
        app.record("lab", "S001", {"date": a, "anc": round(b, 2), "plt": c}, user=USER)
    elif kind == "infusion":
        app.record("infusion", "S001", {"date": a, "cells": b, "weight_kg": round(c, 1)}, user=USER)
    elif kind == "transfusion":
        app.record("transfusion", "S001", {"date": a, "product": b, "units": c}, user=USER)
    elif kind == "correct":
        entry = app.patient("S001").entries.get(a)
        field = {"lab": "anc", "infusion": "weight_kg", "correct": "anc"}.get(entry.kind if entry else "", "anc")
        value = round(b, 2) if field == "anc" else 40 + c / 3
        app.correct(f"S001#{a}", {field: value}, "hypothesis correction", user=USER)
    elif kind == "void":
        app.void(f"S001#{a}", "hypothesis void", user=USER)
    else:
        app.record("death", "S001", {"date": a}, user=USER)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=25))
def test_replaying_the_stream_reproduces_live_state(history: list[tuple[Any, ...]]) -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    enrolled(app)
    live = app.patient("S001")
    for action in history:
        with contextlib.suppress(PgfError):  # a rejected command writes nothing; the law must still hold
            _apply(app, action)
        live = app.patient("S001")
    replayed = None
    for event in app.stream("S001"):
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert replayed.version == live.version
    assert replayed.entries == live.entries
    assert replayed.__dict__.keys() == live.__dict__.keys()
    app.close()
