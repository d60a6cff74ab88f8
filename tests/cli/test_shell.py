"""``pgf shell`` (issue 18 item 2): a visit sheet typed at a prompt, through a real pseudo-terminal."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pexpect
from hypothesis import given, settings
from hypothesis import strategies as st

from pgf_events.cli.shell import _PLAIN, split
from tests.cli.test_daemon import PLAIN, STAMP, env, history
from tests.conftest import REGISTER, SCREEN_OK

SHEET = [
    ["record", "register", "S001", *REGISTER],
    ["record", "consent", "S001", "--date", "2025-02-18"],
    ["record", "screen", "S001", "--date", "2025-02-20", *SCREEN_OK],
    ["record", "enrol", "S001", "--date", "2025-02-24"],
    ["record", "infusion", "S001", "--date", "2025-02-25", "--cells", "6.1e7", "--weight-kg", "61"],
    ["record", "lab", "S001", "--date", "2025-03-01", "--hb", "7.2"],  # refused
    ["record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4", "--source", "LIS 88121"],
    ["correct", "S001#6", "--set", "anc=0.45", "--reason", "transcription error, see LIS-88121"],
]


def line(args: list[str]) -> str:
    return " ".join(f'"{a}"' if " " in a or "," in a else a for a in args)


def test_a_visit_sheet_at_the_prompt_prints_what_pgf_prints(tmp_path: Path) -> None:
    shell_db, plain_db, hist = tmp_path / "shell.db", tmp_path / "plain.db", tmp_path / "hist"
    expected = []
    for args in SHEET:
        r = subprocess.run([*PLAIN, "--db", str(plain_db), *args], env=env(), capture_output=True, text=True)
        expected.append((r.stdout + r.stderr).strip())
    child = pexpect.spawn(sys.executable, ["-m", "pgf_events.client", "--db", str(shell_db), "shell",
                                           "--history", str(hist)],
                          env={**env(), "TERM": "xterm"}, encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        child.expect_exact("pgf> ")
        for args, want in zip(SHEET, expected, strict=True):
            child.sendline("pgf " + line(args) if args[0] == "correct" else line(args))
            child.expect_exact("pgf> ")
            got = child.before.replace("\r\n", "\n").split("\n", 1)[1].strip()  # after the echoed input line
            assert STAMP.sub("T", got) == STAMP.sub("T", want), (args, got, want)
        # the same errors as pgf, and the prompt goes on
        child.sendline('record lab S001 --date "2025-03-02')
        child.expect_exact("Error: cannot read the line: No closing quotation")
        child.expect_exact("pgf> ")
        child.sendline("daemon")
        child.expect_exact("Error: 'daemon' does not run inside pgf shell")
        child.expect_exact("pgf> ")
        child.sendline("history S001 --db other.db")
        child.expect_exact("Error: --db is set when the shell starts")
        child.expect_exact("pgf> ")
        # readline: up-arrow recalls the last line (the --db one), Ctrl-U clears it, the history is kept
        child.send("\x1b[A")
        child.expect_exact("other.db")
        child.send("\x15")
        child.sendline("record lab S001 --date 2025-03-04 --anc 0.7 -q")
        child.expect_exact("S001#8")
        child.expect_exact("pgf> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "record lab S001 --date 2025-03-04 --anc 0.7 -q" in hist.read_text()
    subprocess.run([*PLAIN, "--db", str(plain_db), "record", "lab", "S001", "--date", "2025-03-04", "--anc", "0.7"],
                   env=env(), check=True, capture_output=True)
    assert history(shell_db) == history(plain_db)


def test_a_sheet_from_a_pipe_runs_every_line_and_says_if_any_failed(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    sheet = "\n".join(line(a) for a in SHEET[:4]) + "\n\n# the labs\nrecord lab S001 --date 2025-03-01 --hb 7.2\n"
    r = subprocess.run([*PLAIN, "--db", str(db), "shell"], input=sheet, env=env(), capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith("S001#1 register")
    assert r.stderr.strip().splitlines() == [
        "Error: --hb 7.2 g/L is out of range 20–250 g/L; if it was measured in g/dL add --hb-unit g/dL"]
    ok = subprocess.run([*PLAIN, "--db", str(db), "shell"], input="history S001 --wide\nexit\nrecord lab S001 --anc 1\n",
                        env=env(), capture_output=True, text=True)
    assert ok.returncode == 0 and "S001#4" in ok.stdout and ok.stderr == ""
    assert not os.path.exists(tmp_path / ".pgf_history")


@given(st.text(st.sampled_from(list("ab1 .-#=,\t\r\n'\"\\\x0b\x0c\x1c\x85\xa0\u2003é")), max_size=24))
@settings(max_examples=500, deadline=None)
def test_a_line_split_without_shlex_has_shlex_s_words(line: str) -> None:
    """A plain line (what a visit sheet holds) skips shlex: only where str.split gives the same words."""
    if _PLAIN.fullmatch(line):
        assert line.split() == shlex.split(line)
    else:
        assert any(c in line for c in "'\"\\") or any(c.isspace() and c not in " \t\r\n" for c in line)


def test_lines_with_quotes_or_odd_spaces_still_go_through_shlex() -> None:
    assert split('record lab S001 --source "LIS 88121" --anc 0.4') == \
        ["record", "lab", "S001", "--source", "LIS 88121", "--anc", "0.4"]
    assert split("record lab S001 --source LIS\\ 88121") == ["record", "lab", "S001", "--source", "LIS 88121"]
    assert split("record lab S001 --source 'LIS") == "cannot read the line: No closing quotation"
    assert split("pgf record lab S001\xa0--anc 0.4") == ["record", "lab", "S001\xa0--anc", "0.4"]
