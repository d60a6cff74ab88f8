"""Laws (hypothesis): incremental projections == a rebuild from zero == derive over the events, and
``--as-of`` == the same pure functions over the prefix of the log recorded by then."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from pgf_events.application import TrialConduct
from pgf_events.domain.errors import PgfError
from pgf_events.projections.cohort import build_report
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.queries import cohort_report, patient_status
from pgf_events.projections.slices import PROJECTIONS, all_slices, status_document
from pgf_events.projections.store import ProjectionStore
from pgf_events.store import parse_url
from pgf_events.topics import PATIENT_TOPIC_PREFIX
from tests.conftest import NOW
from tests.helpers import USER, enrolled, register

SUBJECTS = ("S001", "S002", "S003")
DAYS = [f"2025-03-{d:02d}" for d in range(1, 29)] + [f"2025-{m:02d}-15" for m in range(4, 13)]
subject = st.sampled_from(SUBJECTS)
day = st.sampled_from(DAYS)
actions = st.one_of(
    st.tuples(st.just("lab"), subject, day, st.floats(0, 3, allow_nan=False), st.integers(0, 120), st.integers(50, 130)),
    st.tuples(st.just("infusion"), subject, day, st.floats(4e7, 8e7), st.floats(50, 70)),
    st.tuples(st.just("transfusion"), subject, day, st.sampled_from(["rbc", "platelets"])),
    st.tuples(st.just("ae"), subject, day, st.integers(1, 4), st.booleans()),
    st.tuples(st.just("gvhd"), subject, day, st.floats(0, 80), st.integers(0, 2000)),
    st.tuples(st.just("infection"), subject, day, st.integers(1, 4)),
    st.tuples(st.just("contact"), subject, day, st.sampled_from(["free", "relapsed"])),
    st.tuples(st.just("relapse"), subject, day),
    st.tuples(st.just("death"), subject, day),
    st.tuples(st.just("withdraw"), subject, day),
    st.tuples(st.just("correct"), subject, st.integers(0, 1000), st.floats(0, 3, allow_nan=False)),
    st.tuples(st.just("void"), subject, st.integers(0, 1000)),
)


def _apply(app: TrialConduct, action: tuple[Any, ...]) -> None:
    kind, who, *rest = action
    if kind == "lab":
        d, anc, plt, hb = rest
        app.record("lab", who, {"date": d, "anc": round(anc, 2), "plt": plt, "hb": hb}, user=USER)
    elif kind == "infusion":
        d, cells, weight = rest
        app.record("infusion", who, {"date": d, "cells": cells, "weight_kg": round(weight, 1)}, user=USER)
    elif kind == "transfusion":
        app.record("transfusion", who, {"date": rest[0], "product": rest[1]}, user=USER)
    elif kind == "ae":
        d, grade, serious = rest
        fields = {"onset": d, "term": "fever", "grade": grade, "related": "possible", "aware": f"{d}T10:00"}
        app.record("ae", who, {**fields, **({"serious": "hospitalisation"} if serious else {})}, user=USER)
    elif kind == "gvhd":
        app.record("gvhd", who, {"date": rest[0], "skin_bsa": round(rest[1]), "stool_ml": rest[2]}, user=USER)
    elif kind == "infection":
        app.record("infection", who, {"onset": rest[0], "site": "lung", "grade": rest[1]}, user=USER)
    elif kind == "contact":
        app.record("contact", who, {"date": rest[0], "status": "alive", "disease": rest[1]}, user=USER)
    elif kind in ("relapse", "death"):
        app.record(kind, who, {"date": rest[0]}, user=USER)
    elif kind == "withdraw":
        app.record("withdraw", who, {"date": rest[0], "reason": "patient decision"}, user=USER)
    elif kind == "correct":
        version, value = _target(app, who, rest[0]), rest[1]
        entry = app.patient(who).entries.get(version)
        field = {"lab": ("anc", round(value, 2)), "infusion": ("weight_kg", 50 + value * 5),
                 "ae": ("grade", 1 + int(value)), "transfusion": ("units", 1 + int(value))}
        name, new = field.get(entry.kind if entry else "", ("anc", round(value, 2)))
        app.correct(f"{who}#{version}", {name: new}, "hypothesis correction", user=USER)
    else:
        app.void(f"{who}#{_target(app, who, rest[0])}", "hypothesis void", user=USER)


def _target(app: TrialConduct, who: str, pick: int) -> int:
    """An existing event of the patient after the registration (corrections and voids included)."""
    versions = sorted(v for v in app.patient(who).entries if v > 1)
    return versions[pick % len(versions)] if versions else 2


def _derived(app: TrialConduct, events: list[Any]) -> dict[str, dict[str, Any]]:
    """subject -> all slices, derived from the given events (a prefix of the log)."""
    streams: dict[Any, list[Any]] = defaultdict(list)
    for event in events:
        streams[event.originator_id].append(event)
    out = {}
    for stream in streams.values():
        patient, recorded = fold(stream)
        assert patient is not None
        out[patient.subject] = (all_slices(derive_patient(patient, app.protocol, recorded).as_json()), patient.version)
    return out


def _log(app: TrialConduct) -> list[Any]:
    """The patient events of the log (automatic queries put review events beside them)."""
    return [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=100000)
            if n.topic.startswith(PATIENT_TOPIC_PREFIX)]


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=8, max_size=40), st.data())
def test_incremental_rebuilt_and_derived_projections_agree(history: list[tuple[Any, ...]], data: st.DataObject) -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    enrolled(app, "S001")
    enrolled(app, "S002")
    register(app, "S003")
    store = ProjectionStore(app)
    store.catch_up()
    for action in history:
        try:
            _apply(app, action)
            note(f"recorded {action[0]}")
        except PgfError:
            note(f"rejected {action[0]}")  # a rejected command writes nothing
        store.catch_up()
    log = _log(app)
    expected = _derived(app, log)
    incremental = {name: store.rows(name) for name in PROJECTIONS}
    for name in PROJECTIONS:
        assert incremental[name] == [expected[s][0][name] for s in sorted(expected)], name
    store.rebuild()
    assert {name: store.rows(name) for name in PROJECTIONS} == incremental
    for name in PROJECTIONS:  # and so every report is identical too
        assert cohort_report(app, name, store=store) == build_report(
            name, [expected[s][0][name] for s in expected], app.protocol)

    # as-of: the same functions over the prefix of the log recorded by then
    cut = data.draw(st.integers(0, len(log) - 1), label="cut")
    while cut + 1 < len(log) and log[cut + 1].timestamp == log[cut].timestamp:
        cut += 1
    as_of = log[cut].timestamp
    prefix = _derived(app, log[:cut + 1])
    for who, (slices, version) in prefix.items():
        doc, _ = patient_status(app, who, as_of=as_of)
        assert doc.pop("signatures") == []  # this history signs nothing (signatures have their own tests)
        assert doc == {"subject": who, "as_of": doc["as_of"], **{k: v for k, v in status_document(slices, version).items()
                                                                 if k != "subject"}}
    for name in ("eligibility", "survival"):
        assert cohort_report(app, name, as_of=as_of) == build_report(
            name, [s[name] for s, _ in prefix.values()], app.protocol, as_of=as_of)
    store.close()
    app.close()
