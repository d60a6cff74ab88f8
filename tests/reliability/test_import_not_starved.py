"""Issue 18: an import is not starved by single writers. Three processes record labs as fast as they
can on the same patients while ``pgf import`` of 3,000 lines runs: the import takes the store's
write lock first (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an exclusive advisory lock every save
takes shared), so it succeeds, the writers wait for it, and the chain verifies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pgf_events.application import TrialConduct
from pgf_events.store import parse_url
from tests.helpers import register

PGF = [sys.executable, "-c", "from pgf_events.cli import main; main()"]
SUBJECTS = ("S001", "S002", "S003")
WRITER = """
import sys, pathlib
from pgf_events.application import TrialConduct
from pgf_events.domain.errors import PgfError
from pgf_events.store import parse_url
url, subject, stop, progress = sys.argv[1:]
app = TrialConduct(parse_url(url, cipher_key=""))
user, n = app.acting_user(), 0
while not pathlib.Path(stop).exists():
    try:
        app.record("lab", subject, {"date": "2025-03-01", "anc": 1.0}, user=user)
        n += 1
        pathlib.Path(progress).write_text(str(n))
    except PgfError:
        pass
"""


def test_an_import_is_not_starved_by_single_writers(store_url: str, tmp_path: Path) -> None:
    app = TrialConduct(parse_url(store_url, cipher_key=""))
    user = app.acting_user()
    for subject in SUBJECTS:
        register(app, subject, user=user)
    app.close()
    lines = tmp_path / "labs.jsonl"
    lines.write_text("".join(json.dumps({"record": "lab", "subject": SUBJECTS[n % 3], "date": "2025-03-02",
                                         "anc": 0.5}) + "\n" for n in range(3000)))
    stop = tmp_path / "stop"
    env = {**os.environ, "PGF_CIPHER_KEY": ""}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, store_url, s, str(stop), str(tmp_path / f"n{s}")],
                                env=env) for s in SUBJECTS]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"n{s}").exists() for s in SUBJECTS):  # every writer is writing
            assert time.monotonic() < deadline, "the writers did not start"
            time.sleep(0.05)
        imported = subprocess.run([*PGF, "--db", store_url, "import", str(lines)],
                                  capture_output=True, text=True, timeout=300, env=env, check=False)
        before = {s: int((tmp_path / f"n{s}").read_text() or 0) for s in SUBJECTS}
        time.sleep(0.5)
        after = {s: int((tmp_path / f"n{s}").read_text() or 0) for s in SUBJECTS}
    finally:
        stop.touch()
        for w in writers:
            w.wait(timeout=60)
    assert imported.returncode == 0, imported.stderr
    assert "imported 3000 records for 3 patients" in imported.stdout
    assert any(after[s] > before[s] for s in SUBJECTS)  # the writers went on after the import
    verify = subprocess.run([*PGF, "--db", store_url, "audit", "verify"],
                            capture_output=True, text=True, timeout=300, env=env, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
