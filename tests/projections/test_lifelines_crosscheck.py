"""The engine's Kaplan–Meier (with and without delayed entry) and Aalen–Johansen against lifelines,
on the observations of the default demo cohort. lifelines is a test-only dependency (test extra).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from pgf_events.projections.cohort import build_report, survival_observations
from pgf_events.projections.derive import derive_patient
from pgf_events.projections.queries import _all_patients
from pgf_events.projections.slices import slice_state
from pgf_events.store import parse_url
from tests.conftest import Pgf

lifelines = pytest.importorskip("lifelines", reason="lifelines is in the test extra: pip install -e '.[test]'")
HORIZON = 365


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    from pgf_events.application import TrialConduct  # noqa: PLC0415

    url = f"sqlite:///{tmp_path_factory.mktemp('ll')}/demo.db"
    Pgf(url).ok("demo")
    app = TrialConduct(parse_url(url))
    try:
        return [slice_state("survival", derive_patient(p, app.protocol, rec).as_json())
                for p, rec in _all_patients(app)]
    finally:
        app.close()


def _lifelines_km(obs: list[dict[str, Any]], entry: bool) -> float:
    kmf = lifelines.KaplanMeierFitter()
    kmf.fit([o["time"] for o in obs], [o["status"] == 1 for o in obs],
            entry=[o["entry"] for o in obs] if entry else None)
    return float(kmf.predict(HORIZON))


@pytest.mark.parametrize("key", ["os", "dfs"])
def test_kaplan_meier_from_first_infusion_matches_lifelines(rows: list[dict[str, Any]], key: str) -> None:
    from pgf_events.domain.rules.survival import kaplan_meier  # noqa: PLC0415

    obs = survival_observations(rows, key)
    assert len(obs) >= 60 and any(o["status"] == 1 for o in obs)
    ours = kaplan_meier([(o["time"], o["status"]) for o in obs], HORIZON).estimate
    assert ours == pytest.approx(_lifelines_km(obs, entry=False), abs=1e-12)


@pytest.mark.parametrize("key", ["os", "dfs"])
def test_kaplan_meier_with_delayed_entry_matches_lifelines(rows: list[dict[str, Any]], key: str) -> None:
    from pgf_events.domain.rules.survival import kaplan_meier  # noqa: PLC0415

    obs = survival_observations(rows, key, "transplant")
    assert all("entry" in o for o in obs) and any(o["entry"] > 0 for o in obs)
    # lifelines' convention matches ours (entry < t <= time) except for an event on the entry day
    # itself, which lifelines drops from the risk set; the demo has none.
    assert not any(o["entry"] == o["time"] and o["status"] == 1 for o in obs)
    ours = kaplan_meier([(o["time"], o["status"]) for o in obs], HORIZON, entry=[o["entry"] for o in obs])
    assert ours.estimate == pytest.approx(_lifelines_km(obs, entry=True), abs=1e-12)
    report = build_report("survival", rows, _protocol())["summary"]["from_transplant"][f"{key}_1y"]
    assert report["estimate"] == ours.estimate and report["delayed_entry"] is True


def test_aalen_johansen_relapse_incidence_matches_lifelines(rows: list[dict[str, Any]]) -> None:
    """F1(h) = sum over event times of S(t-) d1/n: S and the risk sets n from lifelines' all-cause
    Kaplan-Meier fit; and, when no relapse and death share a day, lifelines' own Aalen-Johansen
    (which jitters such ties, so it cannot be compared exactly then)."""
    from pgf_events.domain.rules.survival import aalen_johansen  # noqa: PLC0415

    obs = survival_observations(rows, "relapse")
    assert any(o["status"] == 1 for o in obs) and any(o["status"] == 2 for o in obs)
    ours = aalen_johansen([(o["time"], o["status"]) for o in obs], HORIZON)
    kmf = lifelines.KaplanMeierFitter().fit([o["time"] for o in obs], [o["status"] != 0 for o in obs])
    table = kmf.event_table
    f1 = f2 = 0.0
    for t in table.index[(table.index > 0) & (table.index <= HORIZON)]:
        before = float(kmf.survival_function_.loc[kmf.survival_function_.index < t].iloc[-1, 0])
        n = float(table.loc[t, "at_risk"])
        f1 += before * sum(1 for o in obs if o["time"] == t and o["status"] == 1) / n
        f2 += before * sum(1 for o in obs if o["time"] == t and o["status"] == 2) / n
    assert ours.estimate == pytest.approx(f1, abs=1e-12) and ours.competing_estimate == pytest.approx(f2, abs=1e-12)
    kinds: dict[float, set[int]] = {}
    for o in obs:
        if o["status"]:
            kinds.setdefault(o["time"], set()).add(o["status"])
    if any(len(k) > 1 for k in kinds.values()):
        return
    for event, estimate in ((1, ours.estimate), (2, ours.competing_estimate)):
        ajf = lifelines.AalenJohansenFitter(calculate_variance=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ajf.fit([o["time"] for o in obs], [o["status"] for o in obs], event_of_interest=event)
        cif = ajf.cumulative_density_
        assert estimate == pytest.approx(float(cif[cif.index <= HORIZON].iloc[-1, 0]), abs=1e-12)


def _protocol() -> Any:
    from pgf_events.protocol import DEFAULT_PROTOCOL  # noqa: PLC0415

    return DEFAULT_PROTOCOL
