"""A long-running process (``pgf shell``) keeps each patient's fold between commands
(:class:`~pgf_events.projections.folds.FoldCache`): every command's fresh ProjectionStore applies
only the new events to it. Law (hypothesis): the read models caught up that way, after every
command of a random history with corrections and voids (and a cache small enough to drop folds),
equal a rebuild from zero and the derivation over the log."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgf_events.application import TrialConduct
from pgf_events.domain.errors import PgfError
from pgf_events.projections.folds import FoldCache
from pgf_events.projections.slices import PROJECTIONS
from pgf_events.projections.store import ProjectionStore
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.helpers import USER, enrolled, register
from tests.projections.test_property import _apply, _derived, _log, actions


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=8, max_size=40), st.integers(1, 60))
def test_catching_up_on_kept_folds_equals_a_rebuild(history: list[tuple[Any, ...]], limit: int) -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    app.projection_folds = folds = FoldCache(limit)
    enrolled(app, "S001")
    enrolled(app, "S002")
    register(app, "S003")
    ProjectionStore(app).catch_up()
    for action in history:
        with contextlib.suppress(PgfError):  # a rejected command writes nothing
            _apply(app, action)
        ProjectionStore(app).catch_up()  # one command's store: only the kept folds carry over
        assert folds._total <= limit or len(folds) == 1  # noqa: SLF001 - the bound holds
    log = _log(app)
    expected = _derived(app, log)
    store = ProjectionStore(app)
    kept = {name: store.rows(name) for name in PROJECTIONS}
    for name in PROJECTIONS:
        assert kept[name] == [expected[s][0][name] for s in sorted(expected)], name
    store.rebuild()
    assert {name: store.rows(name) for name in PROJECTIONS} == kept
    app.close()


def test_a_fold_is_used_only_one_version_behind_and_dropped_when_its_event_fails() -> None:
    app = TrialConduct(parse_url("memory://"), clock=lambda: NOW)
    app.projection_folds = folds = FoldCache()
    enrolled(app, "S001")
    ProjectionStore(app).catch_up()
    pid = app.patient_id("S001")
    fold = folds.get(pid)
    assert fold is not None and fold[0].version == app.patient("S001").version
    app.record("lab", "S001", {"date": "2025-03-02", "anc": 0.4}, user=USER)
    ProjectionStore(app).catch_up()
    assert folds.get(pid)[0] is fold[0]  # type: ignore[index]  # the new event was folded onto the kept patient
    assert fold[0].version == app.patient("S001").version

    class Broken:
        originator_id, originator_version, timestamp = pid, fold[0].version + 1, NOW

        def mutate(self, patient: Any) -> Any:
            raise RuntimeError("a half-applied event")

    with pytest.raises(RuntimeError):
        folds.advance(Broken(), lambda pid, version: app.events.get(pid, lte=version))
    assert folds.get(pid) is None
    register(app, "S002")
    ProjectionStore(app).catch_up()
    assert ProjectionStore(app).patient("S001") is not None
    app.close()
