"""A long-running process (``pgf shell``, ``pgf daemon``) keeps the patients it wrote between commands
(issue 18 item 2): the stored events, their chain and every printed line must be byte for byte those of
one process per command, also when another process writes to a kept patient in between, when a command
is refused after the patient was loaded, and when a patient is corrected or voided."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.cli._resident import DECODED_EVENTS, run_captured
from pgf_events.store import parse_url
from tests.conftest import REGISTER, SCREEN_OK

START = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)

SHEET = [
    ["record", "register", "S001", *REGISTER],
    ["record", "register", "S002", *REGISTER],
    ["record", "consent", "S001", "--date", "2025-02-18"],
    ["record", "screen", "S001", "--date", "2025-02-20", *SCREEN_OK],
    ["record", "enrol", "S001", "--date", "2025-02-24"],
    ["record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61"],
    ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--plt", "18"],
    ["record", "lab", "S001", "--date", "2025-03-01", "--hb", "7.2"],  # refused before S001 is loaded
    ["record", "infusion", "S001", "--date", "2025-02-26", "--cells", "6.1e7", "--weight-kg", "61"],  # refused by it
    "another process",  # writes S001#8 and S002#2 behind the long-running process's back
    ["record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.6", "--plt", "25", "--hb", "80"],
    ["record", "lab", "S002", "--date", "2025-03-02", "--anc", "0.2"],  # a lab before enrolment: stored
    ["correct", "S001#7", "--set", "anc=0.45", "--reason", "transcription error"],
    ["void", "S001#8", "--reason", "wrong patient"],
    ["correct", "S001#99", "--set", "anc=1", "--reason", "no such event"],  # refused
    ["record", "lab", "S001", "--date", "2025-03-03", "--anc", "0.8", "--key", "k1"],
    ["record", "lab", "S001", "--date", "2025-03-03", "--anc", "0.8", "--key", "k1"],  # a retry: the same ref
    ["record", "infusion", "S001", "--date", "2025-02-26", "--cells", "6.1e7", "--weight-kg", "61"],  # refused
    *[["record", "lab", "S00" + str(1 + n % 2), "--date", f"2025-03-{4 + n:02d}", "--anc", str(0.5 + n / 10),
       "--plt", str(20 + 3 * n)] for n in range(12)],
    # edit checks: automatic queries raised on top of the kept facts, and closed by a correction or a void
    ["record", "lab", "S001", "--date", "2025-03-20", "--anc", "45", "--plt", "30"],
    ["record", "ae", "S002", "--onset", "2025-03-20", "--term", "fever", "--grade", "3", "--serious", "hospitalisation"],
    ["record", "lab", "S001", "--date", "2025-03-21", "--plt", "1500"],
    ["record", "lab", "S002", "--date", "2025-03-21", "--anc", "50"],
    ["correct", "S001#18", "--set", "anc=4.5", "--reason", "typing error"],
    ["record", "lab", "S001", "--date", "2025-03-22", "--anc", "60"],
    ["void", "S001#19", "--reason", "wrong patient"],
    ["record", "lab", "S001", "--date", "2025-03-23", "--anc", "1.1"],
    ["record", "lab", "S002", "--date", "2025-03-23", "--anc", "1.2"],
]
OTHER = [["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.5", "--plt", "1800"],  # implausible: a query
         ["record", "consent", "S002", "--date", "2025-02-19"]]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """Every event's timestamp from a counter (restarted per store), so two stores can match byte for byte."""
    import eventsourcing.domain

    now = [START]

    def tick() -> datetime:
        now[0] += timedelta(milliseconds=1)
        return now[0]

    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", tick)
    yield now


def open_app(db: Path) -> TrialConduct:
    return TrialConduct(parse_url(f"sqlite:///{db}", cipher_key=""), clock=lambda: START)


def one_process_per_command(db: Path) -> list[tuple[int, str, str]]:
    out = []
    for args in SHEET:
        for command in (OTHER if args == "another process" else [args]):
            app = open_app(db)
            try:
                result = run_captured(list(command), app)
            finally:
                app.close()
            if args != "another process":
                out.append(result)
    return out


def long_running(db: Path, known_streams: bool = False) -> tuple[list[tuple[int, str, str]], TrialConduct]:
    app = open_app(db)
    app.mapper.remember(DECODED_EVENTS)
    app.status_memo, app.patient_cache, app.edit_facts = {}, {}, {}
    if known_streams:  # as pgf shell: streams found empty or read to their end are not read again
        app.recorder.empty_streams = set()  # type: ignore[attr-defined]
    out = []
    for args in SHEET:
        if args == "another process":
            assert app.patient_cache, "the long-running process keeps the patients it wrote"
            for command in OTHER:
                other = open_app(db)
                try:
                    assert run_captured(command, other)[0] == 0
                finally:
                    other.close()
        else:
            out.append(run_captured(list(args), app))
    return out, app


def stored(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        events = c.execute("SELECT originator_id, originator_version, topic, state FROM stored_events "
                           "ORDER BY rowid").fetchall()
        chain = c.execute("SELECT position, originator_id, originator_version, hash FROM pgf_chain "
                          "ORDER BY position").fetchall()
    return events + chain


@pytest.mark.parametrize("known_streams", [False, True], ids=["daemon", "shell"])
def test_kept_patients_store_and_print_what_one_process_per_command_does(tmp_path: Path, clock: list[datetime],
                                                                         known_streams: bool) -> None:
    plain_db, kept_db = tmp_path / "plain.db", tmp_path / "kept.db"
    plain = one_process_per_command(plain_db)
    clock[0] = START
    kept, app = long_running(kept_db, known_streams)
    try:
        if known_streams:  # the up-to-date checks of the kept patients were answered without a read
            assert app.recorder._last_versions  # type: ignore[attr-defined]
        assert [code for code, _, _ in kept].count(0) < len(kept)  # some commands were refused
        for args, a, b in zip([a for a in SHEET if a != "another process"], kept, plain, strict=True):
            assert a == b, args
        assert stored(kept_db) == stored(plain_db)
        # the kept copy is the stream folded: what a fresh load of the store gives
        for subject in ("S001", "S002"):
            fresh = open_app(kept_db)
            try:
                loaded = fresh.patient(subject)
            finally:
                fresh.close()
            kept_patient, recorded = app.kept_patient(subject, loaded.version) or (None, {})
            assert kept_patient is not None and kept_patient.entries == loaded.entries
            assert sorted(recorded) == list(range(1, loaded.version + 1))
    finally:
        app.close()


def test_a_refused_or_failed_unit_gives_back_nothing(tmp_path: Path, clock: list[datetime]) -> None:
    db = tmp_path / "t.db"
    app = open_app(db)
    app.patient_cache = {}
    try:
        for args in SHEET[:7]:
            assert run_captured(list(args), app)[0] == 0, args
        uuid = app.patient_id("S001")
        assert app.patient_cache[uuid][0].version == 6
        code, _, err = run_captured(["record", "infusion", "S001", "--date", "2025-02-26", "--cells", "6.1e7",
                                     "--weight-kg", "61"], app)  # a dose the aggregate refuses (its window)
        assert code == 1 and err.startswith("Error:")
        assert uuid not in app.patient_cache  # the refused unit's copy is dropped, never reused
        assert run_captured(["record", "lab", "S001", "--date", "2025-03-02", "--anc", "1", "-q"], app) == \
            (0, "S001#7\n", "")
        assert app.patient_cache[uuid][0].version == 7 and not app.patient_cache[uuid][0].pending_events
    finally:
        app.close()


def _shell_after_sheet(db: Path) -> Any:
    """A store opened as ``pgf shell`` opens it (its caches on), the sheet's first seven lines run."""
    app = open_app(db)
    app.patient_cache, app.edit_facts, app.recorder.empty_streams = {}, {}, set()
    try:
        for args in SHEET[:7]:
            assert run_captured(list(args), app)[0] == 0, args
    except BaseException:
        app.close()
        raise
    return app


def test_streams_found_empty_are_read_again_once_anyone_writes_them(tmp_path: Path, clock: list[datetime]) -> None:
    """The shell answers a stream it found empty (a patient's review, the lock, the user directory)
    without a read until the file changes: a freeze by another process, or by the shell itself, is seen."""
    db = tmp_path / "t.db"
    app = _shell_after_sheet(db)
    lab = ["record", "lab", "S001", "--date", "2025-03-02", "--anc", "1", "-q"]
    try:
        assert app.recorder.empty_streams  # type: ignore[attr-defined]  # S001's review, the lock, ...
        other = open_app(db)
        try:
            assert run_captured(["freeze", "S001", "--reason", "reviewed"], other)[0] == 0
        finally:
            other.close()
        code, _, err = run_captured(lab, app)
        assert code == 1 and "frozen" in err, err
        assert run_captured(["unfreeze", "S001", "--reason", "query"], app)[0] == 0
        assert run_captured(lab, app) == (0, "S001#7\n", "")
        assert run_captured(["record", "consent", "S002", "--date", "2025-02-19"], app)[0] == 0  # review: none
        assert run_captured(["freeze", "S002", "--reason", "reviewed"], app)[0] == 0  # its own write
        code, _, err = run_captured(["record", "lab", "S002", "--date", "2025-03-02", "--anc", "1"], app)
        assert code == 1 and "frozen" in err, err
    finally:
        app.close()


def test_a_known_last_version_is_forgotten_when_another_process_writes(tmp_path: Path,
                                                                       clock: list[datetime]) -> None:
    """The shell answers "anything after S001#7?" without a read while the file is unchanged; another
    process's record for S001 (or for another patient) makes it read again, and the next record
    continues the stream after the other process's event."""
    db = tmp_path / "t.db"
    app = _shell_after_sheet(db)
    lab = ["record", "lab", "S001", "--date", "2025-03-02", "--anc", "1", "-q"]
    try:
        assert run_captured(lab, app) == (0, "S001#7\n", "")
        uuid = app.patient_id("S001")
        assert app.recorder._last_versions[uuid.hex] == 7  # type: ignore[attr-defined]
        assert list(app.events.get(uuid, gt=7)) == []
        for other_args, ref in ((lab, "S001#8\n"), (["record", "consent", "S002", "--date", "2025-02-19", "-q"],
                                                     "S002#2\n")):
            other = open_app(db)
            try:
                assert run_captured(other_args, other) == (0, ref, "")
            finally:
                other.close()
            if ref.startswith("S001"):
                assert [e.originator_version for e in app.events.get(uuid, gt=7)] == [8]
        assert run_captured(lab, app) == (0, "S001#9\n", "")
        assert app.recorder._last_versions[uuid.hex] == 9  # type: ignore[attr-defined]
        code, out, _ = run_captured(["void", "S001#9", "--reason", "entered twice"], app)
        assert code == 0 and out.startswith("S001#10"), out
        assert run_captured(lab, app) == (0, "S001#11\n", "")
        fresh = open_app(db)
        try:
            assert fresh.patient("S001").entries == app.kept_patient("S001", 11)[0].entries  # type: ignore[index]
        finally:
            fresh.close()
    finally:
        app.close()


def test_an_insert_that_fails_teaches_no_last_version(tmp_path: Path, clock: list[datetime]) -> None:
    """A save refused by the store (here: the version another process took) leaves the stream unknown."""
    db = tmp_path / "t.db"
    app = open_app(db)
    app.recorder.empty_streams = set()  # type: ignore[attr-defined]
    try:
        for args in SHEET[:7]:
            assert run_captured(list(args), app)[0] == 0, args
        uuid = app.patient_id("S001")
        assert list(app.events.get(uuid)) and app.recorder._last_versions[uuid.hex] == 6  # type: ignore[attr-defined]
        other = open_app(db)
        try:
            assert run_captured(["record", "lab", "S001", "--date", "2025-03-02", "--anc", "1", "-q"], other)[0] == 0
        finally:
            other.close()
        stale = list(app.events.get(uuid, gt=5))
        assert [e.originator_version for e in stale] == [6, 7]  # the other process's write is seen
        with pytest.raises(Exception):  # noqa: B017, PT011 - the store's own refusal (a version taken)
            app.recorder.insert_events([app.mapper.to_stored_event(stale[-1])])
        assert uuid.hex not in app.recorder._last_versions  # type: ignore[attr-defined]  # forgotten, not learnt
        assert [e.originator_version for e in app.events.get(uuid, gt=6)] == [7]
    finally:
        app.close()
