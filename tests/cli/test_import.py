"""pgf import: JSON Lines validated whole first, every bad line reported, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgf_events.audit.recorders_sqlite import ChainedSQLiteRecorder
from tests.conftest import Pgf, fingerprint

REG = {"record": "register", "subject": "S001", "site": "PKU", "birth_date": "1980-02-03", "sex": "F",
       "weight_kg": 61, "transplant_date": "2025-01-10"}
CRITERIA = {"IN1": "yes", "IN4": "yes", "IN5": "yes", **{f"EX{n}": "no" for n in range(1, 9)}}


def lines(*objects: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def good_file() -> str:
    return lines(
        REG,
        {"record": "consent", "subject": "S001", "date": "2025-02-18"},
        {"record": "screen", "subject": "S001", "date": "2025-02-20", "kps": 80, "expected_survival_months": 12,
         "criterion": CRITERIA},
        {"record": "enrol", "subject": "S001", "date": "2025-02-24"},
        {"record": "infusion", "subject": "S001", "date": "2025-02-25", "cells": 6.1e7, "weight_kg": 61},
        {"record": "lab", "subject": "S001", "date": "2025-03-01", "anc": 0.4, "plt": 18, "hb": 7.1, "hb_unit": "g/dL"},
        {"record": "gvhd", "subject": "S001", "date": "2025-03-05", "chronic": True, "organ": {"skin": 1}},
        {"record": "correct", "ref": "S001#6", "set": {"anc": 0.45}, "reason": "re-read the report"},
        {"void": "S001#7", "reason": "entered on the wrong day"},
    )


def test_a_good_file_is_written_atomically(pgf: Pgf, tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(good_file())
    out = json.loads(pgf.ok("import", str(path), "--json").stdout)
    assert out["imported"] == 9 and out["refs"][-1] == "S001#9"
    history = json.loads(pgf.ok("history", "S001", "--json").stdout)["events"]
    assert history[5]["data"]["hb"] == 71.0 and history[7]["data"] == {"anc": {"old": 0.4, "new": 0.45}}


def test_import_from_stdin(pgf: Pgf) -> None:
    assert "imported 1 records for 1 patients" in pgf.ok("import", "-", input=lines(REG)).stdout


def test_every_bad_line_is_reported_and_nothing_is_written(pgf: Pgf, tmp_path: Path) -> None:
    pgf.ok("import", "-", input=lines({**REG, "subject": "S000"}))
    before = fingerprint(pgf.url)
    bad = good_file().splitlines()
    bad.insert(2, '{"record": "lab", "subject": "S001", "date": "2025-03-01", "anc": 400}')  # line 3
    bad.insert(4, "{not json")  # line 5
    bad.append('{"record": "lab", "subject": "S999", "date": "2025-03-01", "anc": 1}')  # line 12
    bad.append('{"record": "biopsy", "subject": "S001"}')  # line 13
    bad.append('["a list"]')  # line 14
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(bad) + "\n")
    result = pgf("import", str(path))
    assert result.exit_code == 1
    err = result.stderr.strip().splitlines()
    assert err[-1] == "Error: 5 of 14 lines failed; nothing was written"
    assert [line.split(":")[0] for line in err[:-1]] == ["line 3", "line 5", "line 12", "line 13", "line 14"]
    assert "out of range" in err[0] and "not valid JSON" in err[1] and "S999 is not registered" in err[2]
    assert fingerprint(pgf.url) == before


def test_a_correct_lines_set_list_of_other_than_texts_is_a_line_error(pgf: Pgf) -> None:
    """ "set" as a list takes "FIELD=VALUE" texts (as --set does); a number or null there is that line's
    error, not a crash."""
    pgf.ok("import", "-", input=good_file())
    before = fingerprint(pgf.url)
    result = pgf("import", "-", input=lines(
        {"record": "correct", "ref": "S001#6", "set": [1], "reason": "x"},
        {"record": "correct", "ref": "S001#6", "set": ["anc=0.5", None], "reason": "x"},
        {"record": "correct", "ref": "S001#6", "set": ["anc=0.5"], "reason": "x"},
    ))
    assert result.exit_code == 1 and "Traceback" not in result.stderr + result.stdout
    err = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in err[:-1]] == ["line 1", "line 2"]
    assert all('"set" is {"FIELD": VALUE, ...} or ["FIELD=VALUE", ...]' in line for line in err[:-1])
    assert err[-1] == "Error: 2 of 3 lines failed; nothing was written"
    assert fingerprint(pgf.url) == before


def test_a_lab_file_read_once_reports_a_refused_line_and_a_parse_error_together(pgf: Pgf) -> None:
    """A file read in one pass (plain lab lines) where one line is refused by a rule and another does not
    parse: both are reported, in line order, and nothing is written."""
    pgf.ok("import", "-", input=lines(REG))
    before = fingerprint(pgf.url)
    result = pgf("import", "-", input=lines({"record": "lab", "subject": "S999", "date": "2025-03-01", "anc": 1})
                 + "{not json\n")
    assert result.exit_code == 1 and "Traceback" not in result.stderr + result.stdout
    err = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in err[:-1]] == ["line 1", "line 2"]
    assert "S999 is not registered" in err[0] and "not valid JSON" in err[1]
    assert err[-1] == "Error: 2 of 2 lines failed; nothing was written"
    assert fingerprint(pgf.url) == before


def test_an_empty_or_non_utf8_file_is_rejected(pgf: Pgf, tmp_path: Path) -> None:
    pgf.rejected("import", "-", input="\n\n", contains="holds no records")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"record": "register", "subject": "S\xe9"}\n'.encode("latin-1"))
    pgf.rejected("import", str(path), contains="not UTF-8")


def test_import_equals_recording_line_by_line(tmp_path: Path) -> None:
    imported = Pgf(f"sqlite:///{tmp_path}/a.db")
    imported.ok("import", "-", input=good_file())
    by_hand = Pgf(f"sqlite:///{tmp_path}/b.db")
    for obj in map(json.loads, good_file().splitlines()):
        kind = obj.pop("record", None)
        if kind is None and "void" in obj:
            by_hand.ok("void", obj["void"], "--reason", obj["reason"])
        elif kind == "correct":
            by_hand.ok("correct", obj["ref"], *[f"--set={k}={v}" for k, v in obj["set"].items()], "--reason", obj["reason"])
        else:
            args = ["record", kind, obj.pop("subject")]
            for key, value in obj.items():
                option = "--" + key.replace("_", "-")
                if isinstance(value, dict):
                    name = "--criterion" if key == "criterion" else "--organ"
                    args += [a for k, v in value.items() for a in (name, f"{k}={v}")]
                elif value is True:
                    args.append(option)
                else:
                    args += [option, str(value)]
            by_hand.ok(*args)

    def strip(events: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "recorded_at"} for e in events]

    a = json.loads(imported.ok("history", "S001", "--json").stdout)["events"]
    b = json.loads(by_hand.ok("history", "S001", "--json").stdout)["events"]
    assert strip(a) == strip(b)


def lab_lines(n: int, subject: str = "S001") -> list[dict]:
    return [{"record": "lab", "subject": subject, "date": "2025-03-01", "anc": 1.0 + i / 100, "source": "LIS"}
            for i in range(n)]


def test_a_lab_file_read_once_reports_every_bad_line_and_writes_nothing(pgf_any: Pgf, tmp_path: Path) -> None:
    """Every line a history-free record: the file is read once (digest and parse errors as it goes); a line
    that parses as JSON but not as a command, and a failing value, are still both reported with their lines."""
    pgf_any.ok("import", "-", input=lines(REG))
    before = fingerprint(pgf_any.url)
    objects = lab_lines(6)
    objects[1] = {"record": "lab", "date": "2025-03-01", "anc": 1}  # line 2: no subject (a parse error)
    objects[4] = {**objects[4], "anc": 400}  # line 5: out of range
    path = tmp_path / "labs.jsonl"
    path.write_text(lines(*objects))
    result = pgf_any("import", str(path))
    assert result.exit_code == 1
    err = result.stderr.strip().splitlines()
    assert err[-1] == "Error: 2 of 6 lines failed; nothing was written"
    assert [line.split(":")[0] for line in err[:-1]] == ["line 2", "line 5"]
    assert 'no "subject"' in err[0] and "out of range" in err[1]
    assert fingerprint(pgf_any.url) == before


@pytest.mark.parametrize("writer_process", [False, True])
def test_a_lab_file_read_once_is_known_when_imported_again(pgf_any: Pgf, tmp_path: Path, writer_process: bool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest computed as the file is read finds the earlier batch at the end of the pass: nothing is
    written (the pass's rows are rolled back), from a file or from standard input; on SQLite with the
    rows written in the importing process or by the writer process."""
    monkeypatch.setattr(ChainedSQLiteRecorder, "bulk_writer_process", writer_process)
    pgf_any.ok("import", "-", input=lines(REG))
    text = lines(*lab_lines(2500))  # more than a chunk: rows were handed to the store before the end
    path = tmp_path / "labs.jsonl"
    path.write_text(text)
    out = json.loads(pgf_any.ok("import", str(path), "--json").stdout)
    assert out["imported"] == 2500 and out["refs"][-1] == "S001#2501"
    before = fingerprint(pgf_any.url)
    for again in (pgf_any("import", str(path), "--json"), pgf_any("import", "-", "--json", input=text)):
        assert again.exit_code == 0, again.stderr
        assert "already imported" in again.stderr
        assert json.loads(again.stdout) == {"imported": 0, "already_imported": True, "digest": out["digest"],
                                            "records": 2500}
    assert fingerprint(pgf_any.url) == before
