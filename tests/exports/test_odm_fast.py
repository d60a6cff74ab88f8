"""The ODM export written as text (issue 18: 11k -> 50k+ events/s) is byte for byte the file the
ElementTree version wrote (kept as the reference in tests/exports/odm_reference.py): every kind of
transaction, awkward characters in every free text, signatures, monitoring, --snapshot and --as-of,
on SQLite and PostgreSQL (the chained recorders read the streams in batches)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgf_events import monitoring
from pgf_events.application import TrialConduct
from pgf_events.audit import odm, source
from pgf_events.audit.odm_meta import decimal_text
from tests.exports import odm_reference
from tests.exports.conftest import rich_scenario
from tests.helpers import USER, enrolled, register, sign

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
AWKWARD = 'A & B < C > "D" \'E\' ünï 张 ]]> &amp;'


def _store(app: TrialConduct) -> None:
    rich_scenario(app)
    register(app, "S005", site='Site & "Co" <1>')
    app.record("lab", "S005", {"date": "2025-03-01", "anc": 0.00001, "plt": 20}, user='j "q" <smith>')
    app.correct("S005#2", {"anc": 1e-7}, AWKWARD, user=USER)  # 3
    app.correct("S005#3", {"plt": 21}, "a correction of a correction", user=USER)  # 4
    app.void("S005#2", "void " + AWKWARD, user=USER)  # 5
    app.void("S005#4", "the record stays voided", user=USER)  # 6: a change to a voided record
    app.void("S005#5", "the void was a mistake", user=USER)  # 7: reinstated
    app.record("ae", "S005", {"onset": "2025-03-02", "term": AWKWARD, "grade": 2}, user=USER)  # 8
    app.correct("S005#1", {"site": "PKU"}, "registration site", user=USER)  # 9
    qid = monitoring.open_query(app, "S005#8", "term? " + AWKWARD, user="monitor1", field="term")
    monitoring.answer_query(app, qid, "checked", user=USER)
    monitoring.verify_source(app, ["S005#2", "S005#8"], user="monitor1")
    sign(app, "S005", "review", user="dr.li")
    enrolled(app, "S006")
    app.record("lab", "S006", {"date": "2025-03-01", "anc": 0.5}, user=USER, source="LIS & <lab>")


def _reference(monkeypatch: pytest.MonkeyPatch, app: TrialConduct, **kw: Any) -> str:
    with monkeypatch.context() as m:
        m.setattr(odm, "subject_data", odm_reference.subject_data)
        return _write(app, **kw)


def _write(app: TrialConduct, **kw: Any) -> str:
    out = io.StringIO()
    odm.write_odm(app, out, now=NOW, **kw)
    return out.getvalue()


@pytest.fixture
def rich(sqlite_url: str) -> Iterator[TrialConduct]:
    app = TrialConduct.open(sqlite_url)
    _store(app)
    yield app
    app.close()


def test_the_text_writer_writes_what_elementtree_wrote(rich: TrialConduct, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "BATCH", 2)  # several batches of streams
    texts = []
    for kw in ({}, {"snapshot": True}, {"as_of": rich.stream("S005")[4].timestamp},
               {"snapshot": True, "as_of": rich.stream("S005")[4].timestamp}):
        texts.append(_write(rich, **kw))
        assert texts[-1] == _reference(monkeypatch, rich, **kw), kw
    text = texts[0]
    assert "A &amp; B &lt; C &gt; &quot;D&quot;" in text and "]]&gt; &amp;amp;" in text
    assert text.count("<SubjectData") > 40


def test_the_streams_read_in_batches_are_the_streams(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "BATCH", 3)
    rich = TrialConduct.open(store_url)
    for n in range(1, 8):
        enrolled(rich, f"S{n:03d}")
        rich.record("lab", f"S{n:03d}", {"date": "2025-03-01", "anc": 0.1 * n}, user=USER)
    rich.correct("S005#5", {"anc": 0.9}, "typo", user=USER)
    fast = list(source.patient_streams(rich))
    assert [s for s, _ in fast] == rich.subjects()
    assert fast == [(s, rich.stream(s)) for s in rich.subjects()]
    cut = rich.stream("S003")[3].timestamp
    assert list(source.patient_streams(rich, cut)) == [
        (s, [e for e in rich.stream(s) if e.timestamp <= cut]) for s in rich.subjects()
        if any(e.timestamp <= cut for e in rich.stream(s))]
    rich.close()


@pytest.mark.parametrize("value", [0.0, -0.0, 1e-05, 1e-7, 6.1e7, 0.6, 1e21, 1e22, 72.0, 123456.789, -3.5e-12,
                                   float("inf"), 2.0**60, 0.1 + 0.2])
def test_decimals_are_written_as_the_decimal_module_writes_them(value: float) -> None:
    from decimal import Decimal

    text = format(Decimal(repr(value)), "f")
    assert decimal_text(value) == (text.rstrip("0").rstrip(".") if "." in text else text)


def test_two_processes_write_what_one_writes(rich: TrialConduct, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a big store with two usable cores the second half of the subjects is written by a worker
    process and appended: the same file, byte for byte, users and sites joined."""
    one = [_write(rich), _write(rich, snapshot=True)]
    monkeypatch.setattr(odm, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(odm, "usable_cpus", lambda: 2)
    started: list[Any] = []
    pool = odm.ProcessPoolExecutor
    monkeypatch.setattr(odm, "ProcessPoolExecutor", lambda *a, **k: started.append(1) or pool(*a, **k))
    assert [_write(rich), _write(rich, snapshot=True)] == one
    assert len(started) == 2


def test_a_file_gets_by_the_kernel_what_a_string_gets(rich: TrialConduct, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """A big export is copied into the file by ``sendfile`` (its clinical data spooled to disk, the
    worker's half in a file of its own): the same bytes as written to a string."""
    from pgf_events.audit.files import atomic_text_file

    monkeypatch.setattr(odm, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(odm, "usable_cpus", lambda: 2)
    monkeypatch.setattr(odm, "SPOOL_BYTES", 1)  # on disk from the first write
    sent: list[int] = []
    sendfile = os.sendfile
    monkeypatch.setattr(os, "sendfile", lambda *a: sent.append(1) or sendfile(*a))
    for kw in ({}, {"snapshot": True}):
        path = tmp_path / "odm.xml"
        with atomic_text_file(path) as out:
            odm.write_odm(rich, out, now=NOW, **kw)
        assert path.read_text(encoding="utf-8") == _write(rich, **kw)
    assert len(sent) >= 4  # each export: the first half and the worker's
