"""The orjson transcoder keeps the stored format: same bytes as the library's json transcoder, both ways.

A store written before the fast transcoder (the library's JSONTranscoder and Mapper) must load,
verify and replay unchanged; what the fast one writes must load with the standard one.
"""

from __future__ import annotations

import functools
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper
from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.application import TrialConduct
from pgf_events.domain.kinds import EVENT_KINDS
from pgf_events.mapper import FastMapper
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.store import parse_url
from pgf_events.transcodings import FastJSONTranscoder
from tests.audit.keys import CliSigner
from tests.conftest import Pgf


class StandardTrialConduct(TrialConduct):
    """The application as it was before: the library's json transcoder and mapper."""

    def construct_mapper(self) -> Mapper[Any]:
        return self.factory.mapper(transcoder=self.construct_transcoder())

    def construct_transcoder(self) -> JSONTranscoder:
        transcoder = JSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder


def _standard(app: TrialConduct) -> JSONTranscoder:
    transcoder = JSONTranscoder()
    app.register_transcodings(transcoder)
    return transcoder


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo cohort with every kind of event: records, corrections, voids, a signature, an import, roles."""
    tmp = tmp_path_factory.mktemp("demo")
    pgf = Pgf(f"sqlite:///{tmp}/demo.db", user=getpass.getuser())
    pgf.ok("demo", "--patients", "6", "--seed", "5")
    CliSigner(pgf, tmp, pgf.user).sign("S001", "--meaning", "review")  # and key registration, approval
    (tmp / "one.jsonl").write_text('{"record":"lab","subject":"S002","date":"2025-06-01","anc":1.5}\n')
    ref = json.loads(pgf.ok("import", str(tmp / "one.jsonl"), "--json").stdout)["refs"][0]
    pgf.ok("void", ref, "--reason", "entered on the wrong patient")
    pgf.ok("users", "grant", getpass.getuser(), "admin")
    return pgf.url


def test_the_fast_transcoder_writes_the_same_bytes_for_every_kind_of_event(demo_store: str) -> None:
    app = TrialConduct(parse_url(demo_store, cipher_key=""))
    assert isinstance(app.mapper, FastMapper) and isinstance(app.mapper.transcoder, FastJSONTranscoder)
    standard = _standard(app)
    stored = app.recorder.select_notifications(start=1, limit=100_000)
    topics = set()
    for notification in stored:
        event = app.mapper.to_domain_event(notification)
        state = dict(vars(event))
        state.pop("originator_id"), state.pop("originator_version")
        if getattr(type(event), "class_version", 1) > 1:  # as the library's mapper writes it (Signed v2)
            state["class_version"] = type(event).class_version
        assert app.mapper.transcoder.encode(state) == standard.encode(state) == notification.state
        assert app.mapper.transcoder.decode(notification.state) == standard.decode(notification.state)
        topics.add(notification.topic.rsplit(".", 1)[-1])
    kinds = {cls.__name__ for cls in EVENT_KINDS}
    assert {"Corrected", "Voided", "Signed", "LabResulted", "Registered"} <= topics & kinds
    assert {"Imported", "Opened", "RoleGranted"} <= topics
    app.close()


def test_a_store_written_by_the_json_module_loads_verifies_and_replays(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = StandardTrialConduct(parse_url(url, cipher_key=""))
    assert type(old.mapper.transcoder) is JSONTranscoder
    for subject in ("S001", "S002"):
        old.record("register", subject, {"site": "PKU", "birth_date": "1980-02-03", "sex": "F", "weight_kg": 61,
                                         "transplant_date": "2025-01-10"}, user="tester")
        old.record("ae", subject, {"onset": "2025-02-01", "term": "fever", "grade": 3,
                                   "serious": "hospitalisation", "aware": "2025-02-01T10:00"}, user="tester")
        old.record("lab", subject, {"date": "2025-02-02", "anc": 0.4, "hb": 7.5, "hb_unit": "g/dL"}, user="tester")
        old.correct(f"{subject}#3", {"anc": 0.5}, "typo", user="tester")
    before = {s: old.stream(s) for s in ("S001", "S002")}
    old.close()

    new = TrialConduct(parse_url(url, cipher_key=""))
    for subject, events in before.items():
        assert new.stream(subject) == events
        assert new.patient(subject) == fold(events)[0]
        assert derive_patient(new.patient(subject), new.protocol, fold(events)[1]).as_json() == \
            derive_patient(fold(events)[0], new.protocol, fold(events)[1]).as_json()
    new.record("lab", "S001", {"date": "2025-02-03", "anc": 0.9}, user="tester")  # written by orjson
    new.close()
    assert json.loads(Pgf(url).ok("audit", "verify", "--json").stdout)["ok"] is True

    again = StandardTrialConduct(parse_url(url, cipher_key=""))  # and the old reader reads the new event
    assert again.stream("S001")[-1].record.anc == 0.9
    again.close()


def test_json_that_only_the_json_module_reads_still_loads() -> None:
    app = TrialConduct(parse_url("memory://"))
    assert app.mapper.transcoder.decode(b'{"x":NaN,"y":[1,{"_type_":"date_iso","_data_":"2025-01-02"}]}')["y"][1].day == 2
    app.close()



@functools.cache
def _both() -> tuple[FastJSONTranscoder, JSONTranscoder]:
    app = TrialConduct(parse_url("memory://", cipher_key=""))
    fast = FastJSONTranscoder()
    app.register_transcodings(fast)
    return fast, _standard(app)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.one_of(st.just(UTC), st.none(), st.timezones())))
@settings(max_examples=1000, deadline=None)
def test_a_time_is_written_as_the_json_transcoder_writes_it(moment: datetime) -> None:
    """Times in UTC are printed by orjson, others by isoformat: the same text either way."""
    fast, standard = _both()
    assert fast.encode({"timestamp": moment}) == standard.encode({"timestamp": moment})
