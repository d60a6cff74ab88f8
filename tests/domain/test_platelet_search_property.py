"""Laws (hypothesis): the one-pass platelet run search (issue 18, ``hemogram.qualifying_runs``)
finds exactly the runs of the rule's start-by-start definition (``hemogram.qualifying_run``), and
the platelet response and every lineage outcome built on it are exactly those of the old search
(each candidate day re-scanned), on random lab series with several labs a day, corrections (a
record's value or day changed, its ref kept) and voids (a record gone), and random run parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.domain.rules import hemogram
from pgf_events.domain.rules.inputs import LabPoint, TransfusionPoint
from pgf_events.domain.rules.response import lineage_outcomes
from pgf_events.protocol import Protocol

D1 = date(2025, 3, 1)
VALUES = (5, 19, 20, 21, 35, 49, 50, 51, 80, 150)  # on both sides of the PR (20) and CR (50) thresholds

run_params = st.builds(dict, plt_min_counts=st.integers(1, 4), plt_sustain_days=st.integers(1, 12),
                       plt_max_gap_days=st.integers(1, 15), plt_transfusion_free_before_days=st.integers(0, 10))


def _old_runs(minima: list[float], days: list[int], tx_days: list[int], params: Protocol, threshold: float, *,
              first: int = 0) -> Iterator[tuple[int, int]]:
    """The old search: :func:`hemogram.qualifying_run` tried at every start, each re-scanning onward."""
    ordered = [date.fromordinal(d) for d in days]
    daily = {d: (v, ()) for d, v in zip(ordered, minima, strict=True)}
    tx = [date.fromordinal(d) for d in tx_days]
    for i in range(first, len(ordered)):
        run = hemogram.qualifying_run(daily, ordered, tx, params, threshold, i)
        if run is not None:
            yield i, i + len(run[2]) - 1


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from((1, 1, 1, 2, 3, 6, 14, 15, 16)), st.sampled_from((*VALUES, 60, 90, 120))),
                min_size=6, max_size=40),
       st.lists(st.integers(-10, 200), max_size=4), run_params, st.sampled_from(("CR", "PR")), st.integers(0, 6))
def test_one_pass_finds_the_runs_of_the_start_by_start_rule(steps: list[tuple[int, float]], tx: list[int],
                                                            params: dict[str, int], grade: str, first: int) -> None:
    protocol = Protocol(**params)
    days, day = [], 0
    for gap, _ in steps:
        day += gap
        days.append(D1.toordinal() + day)
    minima = [value for _, value in steps]
    tx_days = sorted(D1.toordinal() + t for t in tx)
    threshold = protocol.plt_cr_threshold if grade == "CR" else protocol.plt_pr_threshold
    found = list(hemogram.qualifying_runs(minima, days, tx_days, protocol, threshold, first=first))
    assert found == list(_old_runs(minima, days, tx_days, protocol, threshold, first=first))
    note(f"runs found: {min(len(found), 3)}")


def _labs(draw: Any) -> list[LabPoint]:
    """Standing labs after random records, corrections and voids (several a day, in recording order)."""
    labs: list[LabPoint] = []
    for n in range(draw(st.integers(0, 45))):
        labs.append(LabPoint(D1 + timedelta(days=draw(st.integers(-12, 90))), f"S001#{n + 5}",
                             anc=draw(st.sampled_from((None, 0.3, 0.8))), plt=draw(st.sampled_from((None, *VALUES))),
                             hb=draw(st.sampled_from((None, 65, 80)))))
    for _ in range(draw(st.integers(0, 6))):
        if not labs:
            break
        k = draw(st.integers(0, len(labs) - 1))
        if draw(st.booleans()):  # a void: the record no longer counts
            del labs[k]
        else:  # a correction: the same record (ref) with another value or day
            change = draw(st.sampled_from(("plt", "day")))
            new = {"plt": draw(st.sampled_from(VALUES))} if change == "plt" else \
                {"day": labs[k].day + timedelta(days=draw(st.integers(-5, 5)))}
            labs[k] = attrs.evolve(labs[k], **new)
    return labs


@st.composite
def histories(draw: Any) -> tuple[list[LabPoint], list[TransfusionPoint], Protocol, date, tuple[date, str] | None]:
    labs = _labs(draw)
    transfusions = [TransfusionPoint(D1 + timedelta(days=draw(st.integers(-15, 90))), f"S001#{200 + n}",
                                     draw(st.sampled_from(("platelets", "platelets", "rbc"))))
                    for n in range(draw(st.integers(0, 5)))]
    params = Protocol(**draw(run_params), nr_evaluation_day=draw(st.sampled_from((20, 56))))
    as_of = D1 + timedelta(days=draw(st.integers(-3, 100)))
    exit_event = draw(st.sampled_from((None, (D1 + timedelta(days=30), "died"), (D1 + timedelta(days=8), "withdrew"))))
    return labs, transfusions, params, as_of, exit_event


def _outcome(labs: list[LabPoint], transfusions: list[TransfusionPoint], params: Protocol, as_of: date,
             exit_event: tuple[date, str] | None, *, kept: bool) -> Any:
    return lineage_outcomes(labs, transfusions, params, transplant_day=D1 - timedelta(days=28), msc_d1=D1,
                            as_of=as_of, exit_event=exit_event, daily=hemogram.daily_minima(labs) if kept else None)


@pytest.mark.parametrize("kept", [False, True], ids=["from the labs", "from kept daily minima"])
@settings(max_examples=250, deadline=None)
@given(histories())
def test_platelet_response_and_outcomes_are_those_of_the_old_search(
        kept: bool, history: tuple[list[LabPoint], list[TransfusionPoint], Protocol, date, Any]) -> None:
    labs, transfusions, params, as_of, exit_event = history
    new = _outcome(labs, transfusions, params, as_of, exit_event, kept=kept)
    direct = hemogram.platelet_response(labs, transfusions, params, anchor=D1, as_of=as_of, msc_d1=D1,
                                        exit_day=exit_event[0] if exit_event else None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hemogram, "qualifying_runs", _old_runs)
        old = _outcome(labs, transfusions, params, as_of, exit_event, kept=kept)
        old_direct = hemogram.platelet_response(labs, transfusions, params, anchor=D1, as_of=as_of, msc_d1=D1,
                                                exit_day=exit_event[0] if exit_event else None)
    assert new == old
    assert direct == old_direct
    note(f"platelet response: {new.platelet_response}")
