"""Issue 13: clean text at the door, bounded inputs, safe exports, idempotency by meaning, and a demo
that never writes into a store of real subjects. Every bad input: one ``Error:`` line, exit 1,
nothing written."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from pgf_events.audit.odm import xml_text
from pgf_events.cli._output import cell
from tests.conftest import REGISTER, Pgf, enrol_via_cli, fingerprint

LAB = {"record": "lab", "subject": "S001", "date": "2025-03-01", "anc": 0.4}


@pytest.mark.parametrize("text,what", [
    ("AML\uffff", "a Unicode non-character (U+FFFF"),
    ("AML\ufffe", "a Unicode non-character (U+FFFE"),
    ("AML\nS001#9  lab  2025-03-01  coordinator1", "a control character (U+000A"),
    ("AML\u202e", "a bidirectional override (U+202E"),
    ("AML\u2066x\u2069", "a bidirectional override (U+2066"),
    ("AML\x85", "a control character (U+0085"),
    ("AML\u2028", "a line or paragraph separator"),
    ("AML\ud800", "a lone surrogate"),
])
def test_free_text_that_could_break_a_record_or_fake_a_line_is_refused(pgf_any: Pgf, text: str, what: str) -> None:
    pgf_any.rejected("record", "register", "S001", *REGISTER, "--diagnosis", text, contains=f"--diagnosis contains {what}")


def test_free_text_is_nfc_normalised(pgf: Pgf) -> None:
    pgf.ok("record", "register", "S001", *REGISTER, "--diagnosis", "Ewing sarcome (re\u0301cidive)")
    history = json.loads(pgf.ok("history", "S001", "--json").stdout)
    assert "r\u00e9cidive" in json.dumps(history, ensure_ascii=False)


@pytest.mark.parametrize("line,contains", [
    ('{"record":"lab","subject":"S001","date":"2025-03-01","anc":0.4,"source":"\\ud800"}', "lone surrogate"),
    ("[" * 100_000, "nested more than 3 levels"),
    ('{"record":"lab","subject":"S001","date":"2025-03-01","anc":' + "9" * 5000 + "}", "number too long"),
    ('{"record":"lab","subject":"S001","date":"2025-03-01","anc":' + "9" * 4000 + "}", "too large a number"),
    ('{"record":"lab","subject":"S001","date":"2025-03-01","anc":"' + "9" * 5000 + '"}', "at most 40 characters"),
    ('{"record":"lab","subject":"S001","date":"2025-03-01","anc":1e999}', "must be a finite number"),
])
def test_hostile_import_lines_get_one_error_each(pgf_any: Pgf, tmp_path: Path, line: str, contains: str) -> None:
    pgf_any.ok("record", "register", "S001", *REGISTER)
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    before = fingerprint(pgf_any.url)
    result = pgf_any("import", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    # import's own format: the failing line with its error, then the one-line summary
    assert result.stderr.splitlines()[-1] == "Error: 1 of 1 line failed; nothing was written" or \
        result.stderr.startswith("Error: "), result.stderr
    assert contains in result.stderr.splitlines()[0], result.stderr
    assert fingerprint(pgf_any.url) == before


def test_invalid_utf8_in_an_argument_is_one_error_line(tmp_path: Path) -> None:
    """A real process: the OS hands Python the raw bytes, which arrive as lone surrogates."""
    url = f"sqlite:///{tmp_path}/t.db"
    env = {**{k: v for k, v in os.environ.items() if k != "PGF_USER"}, "PYTHONIOENCODING": "utf-8"}
    base = [sys.executable, "-c", "from pgf_events.cli import main; main()", "--db", url, "record"]
    ok = subprocess.run([*base, "register", "S001", *REGISTER], capture_output=True, env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    before = fingerprint(url)
    bad = subprocess.run([*base, b"lab", b"S001", b"--date", b"2025-03-01", b"--anc", b"0.4",
                          b"--source", b"lab report \xff\xfe"], capture_output=True, env=env, check=False)
    assert bad.returncode == 1
    lines = bad.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --source contains a lone surrogate"), bad.stderr
    assert fingerprint(url) == before


def test_table_output_escapes_what_could_fake_a_line() -> None:
    """Text stored before entry refused it is shown escaped, never as a second line."""
    assert cell("AML\nS001#9  lab") == "AML\\u000aS001#9  lab"
    assert cell("x\u202ey") == "x\\u202ey"


def test_odm_is_well_formed_with_any_accepted_text(pgf_any: Pgf, tmp_path: Path) -> None:
    pgf_any.ok("record", "register", "S001", *REGISTER, "--diagnosis", "<AML> & \"MDS\" 'x' ]]> \U0001f9ec \u00e9")
    out = tmp_path / "trial.xml"
    pgf_any.ok("export", "odm", str(out))
    ET.parse(out)  # well-formed
    assert xml_text("AML\uffff\x01") == "AML\ufffd\ufffd"  # what older stores may hold


def test_formula_cells_are_neutralised_in_every_csv(pgf_any: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(pgf_any)
    pgf_any.ok("record", "ae", "S001", "--onset", "2025-03-04", "--term", "=HYPERLINK(\"http://x\",\"y\")",
               "--grade", "2", "--source", "@SUM(A1:A2)")
    pgf_any.ok("record", "lab", "S001", "--date", "2025-03-05", "--anc", "0.4", "--source", "+cmd|' /C calc'!A0")
    trail = tmp_path / "trail.csv"
    pgf_any.ok("export", "audit-trail", str(trail))
    history = pgf_any.ok("history", "S001", "--csv").stdout
    report = pgf_any.ok("report", "safety", "--csv").stdout
    cells = [c for text in (trail.read_text(), history, report)
             for row in csv.reader(text.splitlines()) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:2].isdigit())]
    assert "'@SUM(A1:A2)" in cells and any(c.startswith("'+cmd") for c in cells)


def test_exports_never_follow_a_planted_symlink(pgf: Pgf, tmp_path: Path) -> None:
    enrol_via_cli(pgf)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    sdtm = tmp_path / "sdtm"
    sdtm.mkdir()
    (sdtm / "dm.json").symlink_to(victim)
    (tmp_path / "trail.csv").symlink_to(victim)
    (tmp_path / "trial.xml").symlink_to(victim)
    pgf.ok("export", "sdtm", str(sdtm))
    pgf.ok("export", "audit-trail", str(tmp_path / "trail.csv"))
    pgf.ok("export", "odm", str(tmp_path / "trial.xml"))
    assert victim.read_text() == "precious\n"
    assert not (sdtm / "dm.json").is_symlink() and "USUBJID" in (sdtm / "dm.json").read_text()
    assert not (tmp_path / "trail.csv").is_symlink() and not (tmp_path / "trial.xml").is_symlink()
    assert not [p for p in sdtm.iterdir() if p.name.endswith(".partial")]


# ------------------------------------------------------------------ idempotency by meaning


def test_the_same_import_with_crlf_or_extra_spaces_is_imported_once(pgf_any: Pgf, tmp_path: Path) -> None:
    pgf_any.ok("record", "register", "S001", *REGISTER)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(json.dumps(LAB).encode() + b"\n")
    second.write_bytes(b"\r\n" + json.dumps(LAB, indent=None, separators=(" ,  ", " : ")).encode() + b" \r\n\r\n")
    pgf_any.ok("import", str(first))
    before = fingerprint(pgf_any.url)
    result = pgf_any.ok("import", str(second))
    assert "already imported" in result.stderr
    assert fingerprint(pgf_any.url) == before


def test_a_keyed_record_retried_returns_the_original_reference(pgf_any: Pgf) -> None:
    pgf_any.ok("record", "register", "S001", *REGISTER)
    lab = ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--key", "lis-7781"]
    assert pgf_any.ok(*lab, "-q").stdout == "S001#2\n"
    before = fingerprint(pgf_any.url)
    assert pgf_any.ok(*lab, "-q").stdout == "S001#2\n"  # the retry after a crash: nothing written
    assert pgf_any.ok(*lab[:-4], "--anc", "0.40", "--key", "lis-7781", "-q").stdout == "S001#2\n"  # same meaning
    assert fingerprint(pgf_any.url) == before
    pgf_any.rejected("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.5", "--key", "lis-7781",
                     contains="--key lis-7781 was already used for another command (lab S001#2)")


def test_an_import_line_key_returns_the_original_reference(pgf: Pgf, tmp_path: Path) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--key", "k1")
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({**LAB, "key": "k1"}) + "\n" + json.dumps({**LAB, "date": "2025-03-02"}) + "\n")
    result = json.loads(pgf.ok("import", str(path), "--json").stdout)
    assert result["refs"] == ["S001#2", "S001#3"]


# ------------------------------------------------------------------ the demo and real subjects


def test_the_demo_refuses_a_store_holding_real_subjects(pgf_any: Pgf) -> None:
    pgf_any.ok("record", "register", "P1", *REGISTER)
    pgf_any.rejected("demo", "--patients", "2", contains="holds 1 subject(s) that are not demo subjects (P1)")


def test_plots_and_demo_lines_never_follow_a_planted_symlink(pgf: Pgf, tmp_path: Path) -> None:
    from pgf_events.audit.files import atomic_binary_file

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "km.png").symlink_to(victim)
    with atomic_binary_file(tmp_path / "km.png") as out:
        out.write(b"\x89PNG")
    (tmp_path / "cohort.jsonl").symlink_to(victim)
    pgf.ok("demo", "--patients", "1", "--jsonl", str(tmp_path / "cohort.jsonl"))
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "km.png").read_bytes() == b"\x89PNG" and not (tmp_path / "km.png").is_symlink()
    assert not (tmp_path / "cohort.jsonl").is_symlink() and '"record"' in (tmp_path / "cohort.jsonl").read_text()
