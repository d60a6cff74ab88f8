"""Every module whose code runs while a read model's rows are made is in that model's version hash.

A stored row is a function of the log, the protocol and the code that made it; the version hash
(:mod:`pgf_events.projections.version` for the projections, each stream model's ``sources`` on top
of it) is what rebuilds a store when that code changes. A module left out of the hash could change
the rows without any store noticing. So these tests make the rows of a demo store (corrections,
voids, reviews, queries, late entries) under a tracer that records which ``pgf_events`` modules' code
runs, and compare that with what each hash covers: the projections' slices, every stream model
(audit, trail, worklist) and a declared cut-off's rows. A new import into a row function without
adding its module to the hash fails here, naming the module.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pgf_events.application import TrialConduct
from pgf_events.cli.projections import stream_models
from pgf_events.projections import cutoff_rows, replay, version
from pgf_events.projections.derive import derive_patient, fold
from pgf_events.projections.slices import all_slices
from pgf_events.projections.stream_models import Stream, StreamModel
from pgf_events.store import parse_url
from pgf_events.topics import PATIENT_TOPIC_PREFIX
from tests.conftest import Pgf


@contextmanager
def tracing(ran: set[str]) -> Iterator[None]:
    """Add to ``ran`` the module of every Python function called meanwhile in this thread (its globals'
    ``__name__``: generated methods, such as attrs' and dataclasses', count for their class's module)."""

    def tracer(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            name = frame.f_globals.get("__name__")
            if isinstance(name, str) and name.startswith("pgf_events"):
                ran.add(name)

    before = sys.getprofile()
    sys.setprofile(tracer)
    try:
        yield
    finally:
        sys.setprofile(before)


def _hashed() -> set[str]:
    return {m.__name__ for name in version.DERIVATION_CODE for m in version._modules(name)}


# Modules a hashed module imports that decide no row, each with the reason. Everything else such a
# module imports (names at module level or inside a function; not under ``if TYPE_CHECKING``) must
# be hashed too, so a rule's helper or constant moved into a new module cannot leave the hash.
NOT_DECIDING = {
    "pgf_events.projections.stream_models": "the stream models' frame: the Stream and Row types, register",
    "pgf_events.topics": "names which streams a model follows; the stored topics themselves never change",
    "pgf_events.audit.source": "reads streams from the store for the commands; a row function is given its stream",
    "pgf_events.projections.cohort": "the cohort report built from stored rows; a row uses no code of it",
    "pgf_events.application": "opens the store for the commands (queries.py's readers); no row reads it",
    "pgf_events.projections.replay": "the pass that hands each stream to the row functions",
    "pgf_events.projections.signatures": "the signatures report read from the log, not a row",
    "pgf_events.domain.review": "the Review aggregate: a trail or worklist row reads its events' values only",
    "pgf_events.audit.roles": "who held which role: read for the trail page, not for its rows",
    "pgf_events.projections.history": "the per-field history of the trail page, read when shown",
    "pgf_events.audit.odm_meta": "how a value is written in ODM exports and on the trail page, when shown",
    "pgf_events.audit.trail_monitoring": "the monitoring rows of the trail CSV and page, made when shown",
    "pgf_events.store": "where the store is and which database it is (the tables' types per dialect); no row",
}
# The same, for one model only (another model's rows do use them).
NOT_DECIDING_FOR = {
    "cutoff": {
        "pgf_events.projections.tables": "its tracking rows, read to list the declared cut-offs",
        "pgf_events.projections.model_store": "keeps its stored rows in memory for the readers",
    },
}


def _imported(module: str) -> set[str]:
    """The ``pgf_events`` modules ``module`` imports anywhere but under ``if TYPE_CHECKING`` (a name
    imported from a package counts for its submodule when it is one)."""
    path = Path(importlib.util.find_spec(module).origin)  # type: ignore[union-attr, arg-type]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pgf_events"))
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("pgf_events"):
            assert node.module is not None
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if importlib.util.find_spec(node.module).submodule_search_locations  # type: ignore[union-attr]
                          and importlib.util.find_spec(sub) else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_bytes()))
    return found


def _not_hashed_imports(covered: set[str], model: str = "") -> dict[str, set[str]]:
    """Each module imported by a module of ``covered`` that is neither covered nor in :data:`NOT_DECIDING`
    (or ``model``'s :data:`NOT_DECIDING_FOR`), with the covered modules that import it."""
    out: dict[str, set[str]] = {}
    exempt = set(NOT_DECIDING) | set(NOT_DECIDING_FOR.get(model, {}))
    for module in sorted(covered):
        for target in _imported(module) - covered - exempt:
            out.setdefault(target, set()).add(module)
    return out


def _streams(app: TrialConduct, prefixes: tuple[str, ...]) -> Iterator[Stream]:
    head = app.recorder.max_notification_id() or 0
    for chunk in replay.chunks(replay.stream_heads(app, 0, head)):
        for last, topic, events in replay.iter_streams(app, chunk, prefixes):
            yield Stream(last.originator_id, last.position, topic, events, *fold(events))


def _ran(app: TrialConduct, prefixes: tuple[str, ...], make: Callable[[Stream], Any]) -> tuple[set[str], int]:
    ran: set[str] = set()
    made = 0
    for stream in _streams(app, prefixes):
        with tracing(ran):
            made += len(make(stream))
    return ran, made


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrialConduct]:
    pgf = Pgf(f"sqlite:///{tmp_path_factory.mktemp('coverage') / 'demo.db'}")
    pgf.ok("demo", "--patients", "16", "--seed", "7")
    app = TrialConduct(parse_url(pgf.url, cipher_key=""))
    try:
        yield app
    finally:
        app.close()


def test_the_projections_hash_covers_the_code_their_slices_run(demo_app: TrialConduct) -> None:
    params = demo_app.protocol
    ran, made = _ran(demo_app, (PATIENT_TOPIC_PREFIX,),
                     lambda s: all_slices(derive_patient(s.aggregate, params, s.recorded).as_json()))
    assert made > 0
    assert ran - _hashed() == set(), "modules run for the projections' rows but not in DERIVATION_CODE"
    assert _not_hashed_imports(_hashed()) == {}, "modules the derivation code imports but not in DERIVATION_CODE"


@pytest.mark.parametrize("name", ["audit", "trail", "worklist", "cutoff"])
def test_each_stream_model_hash_covers_the_code_its_rows_run(demo_app: TrialConduct, name: str) -> None:
    model: StreamModel = (cutoff_rows.model(date(2025, 6, 30)) if name == "cutoff"
                          else next(m for m in stream_models([name]) if m.name == name))
    params = demo_app.protocol  # read before tracing: the application's property is not the model's code
    ran, made = _ran(demo_app, model.prefixes, lambda s: model.rows(s, params))
    assert made > 0
    missing = ran - _hashed() - set(model.sources)
    assert missing == set(), f"modules run for the {name} rows but not in its version hash (sources)"
    imported = _not_hashed_imports(_hashed() | set(model.sources), name)
    assert imported == {}, f"modules the {name} rows' modules import but not in its version hash (sources)"


def test_the_tracer_sees_a_module_left_out() -> None:
    """The checks can fail: a function of a module outside the hash is seen when it runs, and a
    module's imports are found (including one inside a function, not one for type checking only)."""
    from pgf_events.domain.patient import Patient  # noqa: PLC0415
    from pgf_events.topics import topic_of  # noqa: PLC0415

    ran: set[str] = set()
    with tracing(ran):
        topic_of(Patient.Registered)
    assert "pgf_events.topics" in ran
    assert "pgf_events.topics" not in _hashed()
    assert "pgf_events.projections.model_store" in _imported("pgf_events.projections.cutoff_rows")  # in a function
    assert "pgf_events.projections.store" not in _imported("pgf_events.projections.cutoff_rows")  # TYPE_CHECKING only
    assert _not_hashed_imports({"pgf_events.projections.cutoff_rows"}) != {}
