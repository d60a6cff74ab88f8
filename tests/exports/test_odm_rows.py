"""The ODM export's record inserts written from the stored rows (audit/odm_rows.py) are the texts the
decoded path (odm_subjects.Transactions on the mapper's events) writes: the whole file on SQLite and
PostgreSQL, with and without --as-of, and each stored JSON the rows path reads or hands over."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from pgf_events import monitoring
from pgf_events.application import TrialConduct
from pgf_events.audit import odm, odm_items, odm_rows, source
from pgf_events.audit.odm_subjects import Seen, Transactions
from pgf_events.domain.patient import Patient
from pgf_events.topics import STORED_TOPICS
from tests.exports.test_odm_fast import AWKWARD, NOW
from tests.exports.test_odm_fast import _store as awkward_store
from tests.helpers import USER, enrolled, infuse, sign


def _write(app: TrialConduct, **kw: Any) -> str:
    out = io.StringIO()
    odm.write_odm(app, out, now=NOW, **kw)
    return out.getvalue()


def _decoded(app: TrialConduct, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> str:
    with monkeypatch.context() as m:
        m.setattr(odm_rows, "usable", lambda app: False)
        return _write(app, **kw)


def _more(app: TrialConduct, nurse: str = "nurse &one", monitor: str = "monitor1", doctor: str = "dr.li") -> None:
    """Every kind of value a record holds: a time, choices, organ scores, a deviation, no source."""
    enrolled(app, "S007")
    infuse(app, "S007", "2025-02-25")
    infuse(app, "S007", "2025-02-28", deviation="patient travelling & <away>")
    app.record("ae", "S007", {"onset": "2025-03-02", "term": "fever", "grade": 3, "serious": ["hospitalisation"],
                              "related": "possible", "aware": "2025-03-03T10:00"}, user=USER, source="SAE form")
    app.record("ae", "S007", {"onset": "2025-03-04", "term": "rash", "grade": 1}, user=nurse)
    app.record("gvhd", "S007", {"date": "2025-09-01", "chronic": True, "organ": {"skin": 1, "lungs": 0}}, user=USER)
    lab = app.record("lab", "S007", {"date": "2025-03-05", "anc": 0.0, "plt": 0, "hb": 71.5}, user=USER).ref
    app.record("vitals", "S007", {"date": "2025-03-05", "temperature": 38.5, "pulse": 90}, user=USER)
    app.correct(lab, {"plt": 12}, "typo", user=USER)
    app.record("lab", "S007", {"date": "2025-03-06", "anc": 1e-7}, user=USER)  # after a correction
    qid = monitoring.open_query(app, lab, "plt?", user=monitor, field="plt")
    monitoring.answer_query(app, qid, "checked", user=USER)
    sign(app, "S007", "review", user=doctor)
    app.record("lab", "S007", {"date": "2025-03-07", "anc": 2.5}, user=USER)  # after a signature


@pytest.fixture
def store(store_url: str) -> Any:
    app = TrialConduct.open(store_url)
    if store_url.startswith("sqlite"):
        awkward_store(app)
        _more(app)
    else:  # PostgreSQL: everyone acts as the database login
        enrolled(app, "S001")
        app.record("lab", "S001", {"date": "2025-03-01", "anc": 0.5}, user=USER, source=AWKWARD)
        _more(app, USER, USER, USER)
    yield app
    app.close()


def test_the_rows_write_what_the_decoded_events_write(store: TrialConduct, monkeypatch: pytest.MonkeyPatch) -> None:
    assert odm_rows.usable(store)
    monkeypatch.setattr(source, "BATCH", 3)  # several batches of streams
    events = store.stream("S007")
    cuts = [events[n].timestamp for n in (0, 4, 9, 12)]
    for kw in ({}, *({"as_of": cut} for cut in cuts)):
        assert _write(store, **kw) == _decoded(store, monkeypatch, **kw), kw
    text = _write(store)
    assert "protocol deviation acknowledged: patient travelling &amp; &lt;away&gt;" in text
    assert 'Value="2025-03-03T02:00:00Z"' in text or 'Value="2025-03-03T10:00:00Z"' in text


def _writer(app: TrialConduct, subject: str) -> tuple[odm_rows._Patient, Transactions]:
    """A patient's writer with the registration folded in (what the rows path has before an insert)."""
    oid = app.patient_id(subject)
    tx = Transactions(subject, Seen())
    rows = app.recorder.stream_rows([(oid, 1)])[0]
    tx.patient = app.mapper.decode(oid, *rows[0]).mutate(None)
    return odm_rows._Patient(tx, oid, app.mapper.decode, None), tx


LAB = "pgf_events.domain.patient:Patient.LabResulted"
AE = "pgf_events.domain.patient:Patient.AdverseEventReported"
STAMP = {"_type_": "datetime_iso", "_data_": "2025-03-01T08:00:00.250000+00:00"}


def _state(record: dict[str, Any], kind: str = "lab", **more: Any) -> dict[str, Any]:
    return {"timestamp": STAMP, "record": {"_type_": f"pgf.{kind}", "_data_": record}, "recorded_by": USER,
            "source": None, **more}


SAID = [  # stored JSON the rows path writes itself
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": 0.5}),  # fields left out: defaults
    _state({"plt": 20, "date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": -0.0}),  # another order
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": 1e22, "unknown": [1]}),  # a field gone
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": 0.1}, source=AWKWARD,
           deviation=AWKWARD, acknowledged=[{"kind": "x", "ref": "S1#1"}]),
    {**_state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}}),
     "timestamp": {"_type_": "datetime_iso", "_data_": "2025-03-01T08:00:00+00:00"}},
    {**_state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}}),
     "timestamp": {"_type_": "datetime_iso", "_data_": "2025-03-01T10:00:00.000000+02:00"}},  # not as written: parsed
    _state({"onset": {"_type_": "date_iso", "_data_": "2025-03-01"}, "term": "x\x01y", "grade": 2,
            "serious": ["death", "hospitalisation"], "aware": {"_type_": "datetime_iso",
                                                                "_data_": "2025-03-01T10:00:00+08:00"},
            "expected": False}, kind="ae"),
    _state({"onset": {"_type_": "date_iso", "_data_": "2025-03-01"}, "term": "x", "grade": 2, "serious": []}, kind="ae"),
]
HANDED_OVER = [  # stored JSON the decoded path writes (the rows path cannot say it exactly)
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": [0.5]}),  # a list where a value is
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": {"a": 1, "b": 2}}),  # a plain dict
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": {"_type_": "decimal", "_data_": "1"}}),
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": 0.5}, recorded_by=7),
    _state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}}, kind="ae"),  # another kind's record
    _state({"onset": {"_type_": "date_iso", "_data_": "2025-03-01"}, "term": "x", "grade": 2, "serious": "death"},
           kind="ae"),
]


@pytest.mark.parametrize("state", SAID + HANDED_OVER)
def test_each_stored_json_is_written_as_decoded_or_handed_over(sqlite_url: str, state: dict[str, Any]) -> None:
    app = TrialConduct.open(sqlite_url)
    enrolled(app, "S001")
    writer, tx = _writer(app, "S001")
    topic = AE if state["record"]["_type_"] == "pgf.ae" else LAB
    row = (2, topic, orjson.dumps(state))
    users: set[str] = set()
    text = writer.inserted(odm_items.recorded()[topic], row, users)
    assert (text is not None) == (state in SAID)
    if text is not None:
        event = app.mapper.decode(writer.oid, *row)
        assert text == tx.inserted(tx_kind(topic), 2, event.record, event, None)
        assert users == {USER}
    app.close()


def tx_kind(topic: str) -> str:
    from pgf_events.domain.kinds import EVENT_KINDS

    return EVENT_KINDS[STORED_TOPICS[topic]]


def test_json_only_the_json_module_reads_is_handed_over(sqlite_url: str) -> None:
    app = TrialConduct.open(sqlite_url)
    enrolled(app, "S001")
    writer, _ = _writer(app, "S001")
    state = orjson.dumps(_state({"date": {"_type_": "date_iso", "_data_": "2025-03-01"}, "anc": 0.5}))
    row = (2, LAB, state.replace(b"0.5", b"NaN"))
    assert writer.inserted(odm_items.recorded()[LAB], row, set()) is None
    app.close()


def test_the_rows_fold_keeps_what_recorded_apply_keeps(store: TrialConduct) -> None:
    """``odm_rows._Patient.fold`` copies what ``Patient.Recorded.apply`` does to the patient (the entry, its
    kind's index, the acknowledgements, the version and the time). If ``apply`` ever keeps more, the
    patient folded from the rows differs from the one the events fold into, and this fails (the ODM
    output alone would show it only where a later transaction reads that state)."""
    app = store
    decode = app.mapper.decode
    checked = 0
    for subject in app.subjects():
        oid = app.patient_id(subject)
        rows = app.recorder.stream_rows([(oid, 1 << 30)])[0]
        events = [decode(oid, *row) for row in rows]
        # the registration and the record inserts after it, up to the first other event
        end = next((n for n, e in enumerate(events[1:], 1) if not isinstance(e, Patient.Recorded)), len(events))
        if end < 3:
            continue
        reference = None
        for event in events[:end]:
            reference = event.mutate(reference)
        tx = Transactions(subject, Seen())
        writer = odm_rows._Patient(tx, oid, decode, None)  # noqa: SLF001
        list(writer.transactions(rows[:end]))
        writer.fold()
        assert tx.patient is not None
        for version, row in writer.unread.items():  # the records the fold leaves unread, read as a change would
            entry = tx.patient.entries[version]
            entry.original = entry.record = decode(oid, *row).record
        folded = {k: v for k, v in vars(tx.patient).items() if k != "_pending_events"}
        expected = {k: v for k, v in vars(reference).items() if k != "_pending_events"}
        assert folded == expected, subject
        checked += 1
    assert checked
