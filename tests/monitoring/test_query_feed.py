"""The ``queries`` projection of the change feed: a downstream service sees every query opened,
answered, closed and reopened exactly once, in order, on both backends (CLI, Python API, HTTP)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from pgf_events.application import TrialConduct
from pgf_events.feed import ChangeFeed
from pgf_events.feed.change import STRIDE
from pgf_events.monitoring import close_query, open_query
from pgf_events.projections.query_feed import FEED_PROJECTIONS
from pgf_events.store import parse_url
from tests.conftest import DEFAULT_USER, Pgf, enrol_via_cli


def _follow(pgf: Pgf, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in pgf.ok("follow", "--once", *args).stdout.splitlines()]


def test_a_follower_sees_each_query_action_once_in_order(pgf_any: Pgf) -> None:
    pgf = pgf_any
    enrol_via_cli(pgf)
    lab = pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "-q").stdout.strip()
    qid = pgf.ok("query", "open", lab, "--field", "anc", "--text", "ANC 0.4? the report says 0.45").stdout.strip()
    answer = pgf.ok("correct", lab, "--set", "anc=0.45", "--reason", "typo", "--answers", qid).stdout.split()[0]
    first = _follow(pgf, "--projection", "queries")
    assert [(c["data"]["action"], c["data"]["status"], c["kind"]) for c in first] == [
        ("opened", "open", "insert"), ("answered", "answered", "update")]
    opened = first[0]
    assert opened["projection"] == "queries" and opened["subject"] == "S001" and opened["event_ref"] == qid
    assert {k: opened["data"][k] for k in ("qid", "ref", "field", "by")} == {
        "qid": qid, "ref": lab, "field": "anc", "by": DEFAULT_USER}
    assert first[1]["data"]["answer_ref"] == answer
    pgf.ok("query", "close", qid, "--text", "checked against the lab report")
    pgf.ok("query", "reopen", qid, "--text", "the source says otherwise")
    other = pgf.ok("query", "open", "S001#2", "--text", "consent version?").stdout.strip()
    rest = _follow(pgf, "--projection", "queries", "--after", str(first[-1]["position"]))
    assert [(c["data"]["qid"], c["data"]["action"], c["data"]["status"]) for c in rest] == [
        (qid, "closed", "closed"), (qid, "reopened", "open"), (other, "opened", "open")]
    whole = _follow(pgf, "--projection", "queries")
    assert whole == first + rest  # resuming lost and repeated nothing
    positions = [c["position"] for c in whole]
    assert positions == sorted(set(positions)) and all(p % STRIDE == FEED_PROJECTIONS.index("queries")
                                                       for p in positions)
    everything = _follow(pgf)  # the whole feed interleaves them with the patient projections, in log order
    assert [c for c in everything if c["projection"] == "queries"] == whole
    assert [c["position"] for c in everything] == sorted({c["position"] for c in everything})
    pgf.rejected("follow", "--once", "--projection", "reviews", code=2, contains="'reviews' is not one of")


def test_concurrent_followers_write_each_query_change_once(store_url: str, tmp_path: Path) -> None:
    pgf = Pgf(store_url)
    enrol_via_cli(pgf)
    app = TrialConduct(parse_url(store_url))
    feeds = [ChangeFeed(store_url), ChangeFeed(store_url)]
    try:
        qids = []
        stop = threading.Event()

        def follow_up(feed: ChangeFeed) -> None:
            while not stop.is_set():
                feed.catch_up()

        threads = [threading.Thread(target=follow_up, args=(feed,)) for feed in feeds]
        for thread in threads:
            thread.start()
        for n in range(1, 5):
            qid = open_query(app, f"S001#{n}", f"check record {n}", user=DEFAULT_USER)
            close_query(app, qid, "checked", user=DEFAULT_USER)
            qids.append(qid)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        changes = list(feeds[0].changes(projection="queries"))
        assert [(c.data["qid"], c.data["action"]) for c in changes] == [
            (q, action) for q in qids for action in ("opened", "closed")]
        assert list(feeds[1].changes(projection="queries")) == changes
    finally:
        for feed in feeds:
            feed.close()
        app.close()
