"""A long-running process (``pgf shell``, ``pgf daemon``) loads at start what a visit sheet's commands
would load on first use (:func:`pgf_events.cli._resident.prepare`): the user's first line is answered as
fast as the next, and the bench's per-record figure (the shell's time minus its start-up) is not charged
with imports. Not a timing test: each line of a real ``pgf shell`` in a fresh interpreter is checked to
import no pgf module of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.test_daemon import PLAIN, env
from tests.cli.test_shell import SHEET

PROBE = """
import json, os, sys
import pgf_events.cli.shell as shell
inner, found = shell.run, []
def run(args, app):
    before = set(sys.modules)
    code = inner(args, app)
    found.append([" ".join(args[:2]), code, sorted(m for m in set(sys.modules) - before if m.startswith("pgf_events"))])
    return code
shell.run = run
from pgf_events.cli import main
sys.argv = ["pgf", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
with open(os.environ["PGF_PROBE_OUT"], "w") as out:
    json.dump(found, out)
"""

VISIT = [
    "record lab S001 --date 2025-03-01 --anc 0.4 --plt 18",
    "correct S001#6 --set anc=0.45 --reason 'transcription error'",
    "record transfusion S001 --date 2025-03-02 --product RBC --units 2",
    "void S001#8 --reason 'entered twice'",
    "status S001",
    "history S001",
]


def test_a_visit_sheet_s_lines_import_nothing_the_shell_did_not_load_at_start(tmp_path: Path) -> None:
    db, out = tmp_path / "t.db", tmp_path / "modules.json"
    for args in SHEET[:5]:  # a registered, enrolled, infused patient, by the plain commands
        subprocess.run([*PLAIN, "--db", str(db), *args], env=env(), check=True, capture_output=True)
    r = subprocess.run([sys.executable, "-c", PROBE, "--db", str(db), "shell"], input="\n".join(VISIT) + "\n",
                       env={**env(), "PGF_PROBE_OUT": str(out)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    found = json.loads(out.read_text())
    assert [(command, code) for command, code, _ in found] == [
        ("record lab", 0), ("correct S001#6", 0), ("record transfusion", 0), ("void S001#8", 0), ("status S001", 0),
        ("history S001", 0)]
    late = {command: modules for command, _, modules in found if modules}
    assert late == {}, json.dumps(late)

