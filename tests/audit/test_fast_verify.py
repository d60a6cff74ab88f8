"""The fast verification path (one joined pass, split over two processes) answers exactly what the
precise merge answers: the same summary for an intact log, the same first break for a tampered one."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.audit import fastverify
from pgf_events.audit.chain import Checkpoint
from pgf_events.audit.verify import Verification, chain_reader, verify
from pgf_events.guards import review_of
from pgf_events.store import parse_url
from tests.audit.attacker import Attacker
from tests.conftest import Pgf


class Precise:
    """The same reader without the fast path's methods: verify() then merges events and links."""

    def __init__(self, reader: Any):
        for name in ("chain_head", "max_position", "event_rows", "link_rows", "link_identity"):
            setattr(self, name, getattr(reader, name))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, TrialConduct]]:
    monkeypatch.setattr(fastverify, "PARALLEL_MIN_EVENTS", 1)  # split even this small log in two processes
    url = f"sqlite:///{tmp_path}/v.db"
    Pgf(url, user=getpass.getuser()).ok("demo", "--patients", "8", "--seed", "2")
    app = TrialConduct(parse_url(url, cipher_key=""))
    yield url, app
    app.close()


def _summary(result: Verification) -> tuple[Any, ...]:
    return result.events, result.last_position, result.digest, result.head, result.backfilled, result.broken


def test_an_intact_log_gives_the_same_summary_both_ways(store: tuple[str, TrialConduct]) -> None:
    _, app = store
    reader = chain_reader(app)
    assert len(fastverify.check_all(reader, reader.max_position(), frozenset())) == 2
    fast, precise = verify(reader), verify(Precise(reader))
    assert fast.ok and _summary(fast) == _summary(precise) and fast.events > 500


def test_a_checkpoint_is_checked_on_the_fast_path_too(store: tuple[str, TrialConduct]) -> None:
    _url, app = store
    reader = chain_reader(app)
    early = verify(reader).current_checkpoint
    assert early is not None
    alive = next(s for s in app.subjects()  # the demo freezes one patient: write to another
                 if app.patient(s).death is None and not getattr(review_of(app, s, create=False), "frozen", None))
    app.record("lab", alive, {"date": "2025-09-01", "anc": 2.0}, user="tester")
    assert verify(reader, early).ok
    wrong = Checkpoint(early.position, "0" * 20)
    assert _summary(verify(reader, wrong)) == _summary(verify(Precise(reader), wrong))
    assert verify(reader, wrong).broken.kind == "checkpoint"  # type: ignore[union-attr]


@pytest.mark.parametrize("half", ["first", "second"])
def test_a_tampered_log_gives_the_same_first_break_both_ways(store: tuple[str, TrialConduct], half: str) -> None:
    url, app = store
    reader = chain_reader(app)
    last = reader.max_position()
    position = last // 4 if half == "first" else 3 * last // 4
    attacker = Attacker(url)
    attacker.drop_triggers()
    state = attacker.state(position)
    attacker.set_state(position, state.replace(b'"recorded_by":"', b'"recorded_by":"x', 1))
    later = position + 10
    attacker.delete_link(later)  # a second problem after the first: the report must name the first
    attacker.close()
    fast, precise = verify(reader), verify(Precise(reader))
    assert not fast.ok and _summary(fast) == _summary(precise)
    assert fast.broken.position == position and fast.broken.kind == "modified"  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["zero", "first", "second"])
def test_a_link_without_its_event_gives_the_same_answer_both_ways(store: tuple[str, TrialConduct], where: str) -> None:
    """Each segment counts the links of its range (links at positions below 1 go to the first): a stray
    link makes them outnumber the events and the precise path names it."""
    url, app = store
    reader = chain_reader(app)
    last = reader.max_position()
    position = {"zero": 0, "first": last // 4, "second": 3 * last // 4}[where]
    attacker = Attacker(url)
    attacker.drop_triggers()
    if position:
        attacker.delete_event(position)  # its link stays: a link without an event, in the middle
    else:
        attacker.sql("INSERT INTO pgf_chain (position, originator_id, originator_version, hash) "
                     "SELECT 0, originator_id, originator_version, hash FROM pgf_chain WHERE position = 1")
    attacker.restore_triggers()  # (Precise does not look at triggers)
    attacker.close()
    fast, precise = verify(reader), verify(Precise(reader))
    assert _summary(fast) == _summary(precise)
    assert precise.ok == (where == "zero")  # the precise merge reads positions from 1: a link at 0 is not its concern


def test_a_link_past_the_last_event_gives_the_same_answer_both_ways(store: tuple[str, TrialConduct]) -> None:
    """The fast path knows the links match the events without counting them (the events fill their
    range with no gap); a link after the last event must still stop it."""
    url, app = store
    reader = chain_reader(app)
    last = reader.max_position()
    attacker = Attacker(url)
    attacker.drop_triggers()
    attacker.sql("INSERT INTO pgf_chain (position, originator_id, originator_version, hash) "
                 "SELECT ?, originator_id, originator_version, hash FROM pgf_chain WHERE position = ?", (last + 3, last))
    attacker.restore_triggers()
    attacker.close()
    fast, precise = verify(reader), verify(Precise(reader))
    assert not precise.ok and _summary(fast) == _summary(precise)
    assert fast.broken.kind == "deleted" and fast.broken.position == last + 3  # type: ignore[union-attr]


@pytest.mark.parametrize("stray", [False, True])
def test_a_gap_in_a_rechained_log_gives_the_same_answer_both_ways(store: tuple[str, TrialConduct], stray: bool) -> None:
    """An event removed and the chain rebuilt over the rest: the chain alone verifies, with a gap in
    the positions. The fast path then counts the links instead of inferring them from the events; a
    link left in the gap (no event of its own) is found by that count."""
    url, app = store
    reader = chain_reader(app)
    last = reader.max_position()
    attacker = Attacker(url)
    attacker.drop_triggers()
    attacker.delete_event(last // 4)
    attacker.rechain()
    if stray:
        attacker.sql("INSERT INTO pgf_chain (position, originator_id, originator_version, hash) "
                     "SELECT ?, originator_id, originator_version, hash FROM pgf_chain WHERE position = ?",
                     (last // 4, last // 4 + 1))
    attacker.restore_triggers()
    attacker.close()
    assert (fastverify.check_all(reader, last, frozenset())[0] is None) == stray  # the first half
    fast, precise = verify(reader), verify(Precise(reader))
    assert fast.ok == (not stray) and _summary(fast) == _summary(precise)
    assert stray or fast.events == last - 1


def test_a_flag_set_on_a_link_is_counted_the_same_both_ways(store: tuple[str, TrialConduct]) -> None:
    """A link marked backfilled in a store born chained (not hashed, only reported): both paths count it."""
    url, app = store
    reader = chain_reader(app)
    last = reader.max_position()
    attacker = Attacker(url)
    attacker.drop_triggers()
    attacker.sql("UPDATE pgf_chain SET backfilled = 1 WHERE position IN (?, ?)", (last // 4, 3 * last // 4))
    attacker.restore_triggers()
    attacker.close()
    fast, precise = verify(reader), verify(Precise(reader))
    assert fast.ok and _summary(fast) == _summary(precise) and fast.backfilled == 2


def test_an_upgraded_store_counts_its_backfilled_links_the_same_both_ways(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'pgf db upgrade' backfills the links of the events already there: read again with the plain
    link column and counted; in two processes the second half starts among them and leaves them."""
    import attrs

    from tests.helpers import enrolled

    monkeypatch.setattr(fastverify, "PARALLEL_MIN_EVENTS", 1)
    url = f"sqlite:///{tmp_path}/old.db"
    config = parse_url(url, cipher_key="")
    old = TrialConduct(attrs.evolve(config, env={k: v for k, v in config.env.items()
                                                 if k != "APPLICATION_RECORDER_TOPIC"}))  # no chain
    enrolled(old, "S001")  # 4 events
    old.close()
    pgf = Pgf(url, user=getpass.getuser())
    pgf.ok("db", "upgrade")
    for day in ("2025-03-01", "2025-03-02"):
        pgf.ok("record", "lab", "S001", "--date", day, "--anc", "0.4")
    app = TrialConduct(config)
    try:
        reader = chain_reader(app)
        halves = fastverify.check_all(reader, reader.max_position(), frozenset())  # (0, 3] and (3, 6]
        assert [s.backfilled for s in halves if s is not None] == [3, 1]
        fast, precise = verify(reader), verify(Precise(reader))
        assert fast.ok and _summary(fast) == _summary(precise) and (fast.events, fast.backfilled) == (6, 4)
    finally:
        app.close()


@pytest.mark.parametrize("offset", [0, 1])
def test_a_break_at_or_after_a_batch_edge_gives_the_same_answer_both_ways(
        store: tuple[str, TrialConduct], monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """The loop reads the rows in batches (FETCH) and counts them by the batch: a modified event as the
    last row of a batch, or the first of the next, is found, and an intact log counts every event."""
    url, app = store
    reader = chain_reader(app)
    monkeypatch.setattr(fastverify, "FETCH", 7)
    intact = fastverify.check_all(reader, reader.max_position(), frozenset())
    assert sum(s.count for s in intact if s is not None) == reader.max_position() and None not in intact
    position = 7 * (reader.max_position() // 28) + offset  # in the first half, at a batch's end or the next's start
    attacker = Attacker(url)
    attacker.drop_triggers()
    state = attacker.state(position)
    attacker.set_state(position, state.replace(b'"recorded_by":"', b'"recorded_by":"x', 1))
    assert attacker.state(position) != state
    attacker.close()
    assert fastverify.check_all(reader, reader.max_position(), frozenset())[0] is None
    fast, precise = verify(reader), verify(Precise(reader))
    assert _summary(fast) == _summary(precise)
    assert fast.broken.position == position and fast.broken.kind == "modified"  # type: ignore[union-attr]
