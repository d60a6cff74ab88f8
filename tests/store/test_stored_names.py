"""Stored names are data: every event class has a fixed topic, and moving a class keeps old stores readable."""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic

import pgf_events
from pgf_events.topic_names import STORED_TOPIC_NAMES
from pgf_events.topics import PATIENT_TOPIC_PREFIX, STORED_TOPICS
from tests.conftest import REGISTER, Pgf


def _classes_defined_in_pgf_events() -> set[type]:
    for module in pkgutil.walk_packages(pgf_events.__path__, "pgf_events."):
        if module.name.startswith(("pgf_events.serve", "pgf_events.projections.plots")):
            continue  # optional extras (starlette, matplotlib); they define no events
        importlib.import_module(module.name)
    found: set[type] = set()
    todo: list[type] = [Aggregate, Aggregate.Event]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("pgf_events."):
                found.add(sub)
    return found


def test_every_aggregate_and_event_class_has_a_registered_stored_topic() -> None:
    abstract = {"Event", "Recorded", "Created"}  # bases, and the library's default Created (never stored)
    stored = {cls for cls in _classes_defined_in_pgf_events() if cls.__name__ not in abstract}
    missing = sorted(f"{c.__module__}:{c.__qualname__}" for c in stored - set(STORED_TOPICS.values()))
    assert not missing, f"add these classes to pgf_events/topics.py STORED_TOPICS (topics are data): {missing}"
    for topic, cls in STORED_TOPICS.items():
        assert resolve_topic(topic) is cls
        assert get_topic(cls) == topic
        if issubclass(cls, Aggregate.Event) and "Patient" in topic:
            assert topic.startswith(PATIENT_TOPIC_PREFIX)
    # The same names as text, for what checks a topic without importing the domain (opening a store).
    assert set(STORED_TOPICS) == STORED_TOPIC_NAMES, "pgf_events/topic_names.py lists the topics of topics.py"


MOVE_THE_CLASS = textwrap.dedent("""
    import sys, types
    from pgf_events.domain.patient import Patient

    # Move LabResulted to another module before anything registers topics...
    moved = types.ModuleType("pgf_events.domain.lab_events")
    sys.modules[moved.__name__] = moved
    cls = Patient.LabResulted
    cls.__module__, cls.__qualname__ = moved.__name__, "LabResulted"
    moved.LabResulted = cls

    from pgf_events.cli import main
    import pgf_events.domain.kinds  # noqa: F401 - the registry refers to the class where it now is
    import pgf_events.topics  # noqa: F401 - registers the stored names

    # ...and take it away from its old address: the old topic can no longer be imported by name.
    del Patient.LabResulted
    sys.argv = ["pgf", *sys.argv[1:]]
    main()
""")


def test_a_store_written_earlier_still_loads_after_an_event_class_moves(tmp_path: Path, sqlite_url: str) -> None:
    pgf = Pgf(sqlite_url)
    pgf.ok("record", "register", "S001", *REGISTER)
    pgf.ok("record", "lab", "S001", "--date", "2025-03-01", "--anc", "0.4")
    script = tmp_path / "moved.py"
    script.write_text(MOVE_THE_CLASS)

    def moved_pgf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), "--db", sqlite_url, *args],  # as the OS account
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])

    history = moved_pgf("history", "S001")
    assert history.returncode == 0, history.stderr
    assert "S001#2" in history.stdout and "0.4" in history.stdout
    written = moved_pgf("record", "lab", "S001", "--date", "2025-03-02", "--anc", "0.6")
    assert written.returncode == 0, written.stderr
    database = sqlite_url.removeprefix("sqlite:///")
    topics = [t for (t,) in sqlite3.connect(database).execute("SELECT topic FROM stored_events ORDER BY rowid")]
    assert topics[1] == topics[2] == "pgf_events.domain.patient:Patient.LabResulted"  # the new event too


def test_a_store_with_an_unknown_topic_says_so_rather_than_encrypted(pgf: Pgf) -> None:
    pgf.ok("record", "register", "S001", *REGISTER)
    database = pgf.url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:  # as if a later version had written an event this one lacks
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{trigger}"')
        conn.execute("UPDATE stored_events SET topic = 'pgf_events.domain.patient:Patient.Gone'")
    result = pgf("history", "S001")
    assert result.exit_code == 1
    assert "Patient.Gone" in result.stderr and "does not know" in result.stderr
    assert "encrypted" not in result.stderr
