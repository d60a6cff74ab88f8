"""Imports point inward and close no circle (docs/architecture.md).

The import graph is built by grimp (import-linter's engine) from the source, including imports
inside functions (those run too) and leaving out ``if TYPE_CHECKING:`` blocks (those never run).

    python -m tests.test_architecture     # the graph between packages, and any cycle or wrong-way import

Every module belongs to one layer; a module may import from its own layer (subject to the sibling
rules below) or from any layer further in, never outward.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import grimp
import pytest

# Outermost first. Each layer lists its packages/modules (a package covers its submodules; the most
# specific entry wins: audit.source, what every reader reads the record with, and audit.chain, the
# hash chain's definition that signing binds to, audit.files, atomic output files, and audit.dbroles, the
# store's PostgreSQL roles, are application).
# The packages of the delivery and readers layers are independent of each other (see
# SIBLINGS_ALLOWED); the modules of the application, domain and shared layers work together.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("delivery", ("pgf_events.cli", "pgf_events.serve", "pgf_events.web", "pgf_events.client")),
    ("feed", ("pgf_events.feed",)),
    ("readers", ("pgf_events.audit", "pgf_events.exports", "pgf_events.projections", "pgf_events.demo*")),
    ("application", ("pgf_events.audit.source", "pgf_events.audit.chain", "pgf_events.audit.files",
                     "pgf_events.application", "pgf_events.commands", "pgf_events.bulk", "pgf_events.bulk_plan", "pgf_events.store", "pgf_events.transcodings", "pgf_events.mapper",
                     "pgf_events.topics", "pgf_events.topic_names", "pgf_events.log", "pgf_events.retry", "pgf_events.gc_tuning",
                     "pgf_events.identity", "pgf_events.signing", "pgf_events.workers", "pgf_events.bound_cipher",
                     "pgf_events.audit.dbroles", "pgf_events.guards", "pgf_events.monitoring",
                     "pgf_events.site_scope", "pgf_events.user_roles")),
    ("domain", ("pgf_events.domain", "pgf_events.protocol")),
    ("shared", ("pgf_events", "pgf_events.formatting")),  # the package root (__version__) and formats
]
# Imports between different packages of one layer that are allowed (anything else is refused):
# the CLI starts the server, which mounts the web workspace (web and cli never import each other);
# the entry point (client) falls back to the CLI, whose daemon speaks the client's wire format;
# audit reports and exports read the history and derived state.
INDEPENDENT = {"delivery", "readers"}
SIBLINGS_ALLOWED = {
    ("pgf_events.cli", "pgf_events.serve"),
    ("pgf_events.serve", "pgf_events.web"),
    ("pgf_events.cli", "pgf_events.client"), ("pgf_events.client", "pgf_events.cli"),  # pgf daemon <-> its client
    ("pgf_events.audit", "pgf_events.projections"),
    ("pgf_events.exports", "pgf_events.projections"),
}

# Wrong-way imports and circles that work in flight removes (owner in brackets). Any other fails;
# these are reported by ``python -m tests.test_architecture`` until they are gone.
KNOWN_WRONG_WAY: set[tuple[str, str]] = set()
KNOWN_CYCLES: list[list[str]] = []


def graph() -> grimp.ImportGraph:
    return grimp.build_graph("pgf_events", exclude_type_checking_imports=True)


def owner(module: str) -> tuple[int, str]:
    """(layer index, the package or module of LAYERS that holds ``module``), most specific first."""
    best: tuple[int, str] | None = None
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if member.endswith("*"):  # pgf_events.demo* : the demo model's modules, one group
                covers = module.startswith(member[:-1])
            else:
                covers = module == member or (member != "pgf_events" and module.startswith(member + "."))
            if covers and (best is None or len(member) > len(best[1])):
                best = (index, member)
    if best is None:
        raise LookupError(f"{module} belongs to no layer: add it to LAYERS in tests/test_architecture.py "
                          "(and to docs/architecture.md)")
    return best


def imports(g: grimp.ImportGraph) -> Iterator[tuple[str, str]]:
    for module in sorted(g.modules):
        for imported in sorted(g.find_modules_directly_imported_by(module)):
            yield module, imported


def wrong_way(g: grimp.ImportGraph) -> list[str]:
    found = []
    for module, imported in imports(g):
        (i, a), (j, b) = owner(module), owner(imported)
        if a == b:
            continue
        if j < i:
            found.append(f"{module} -> {imported}: {LAYERS[i][0]} must not import {LAYERS[j][0]}")
        elif i == j and LAYERS[i][0] in INDEPENDENT and (a, b) not in SIBLINGS_ALLOWED:
            found.append(f"{module} -> {imported}: {a} must not import {b} (same layer)")
    return found


def cycles(g: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.find_modules_directly_imported_by(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(g.modules):
        if module not in index:
            visit(module)
    return found


@pytest.fixture(scope="module")
def import_graph() -> grimp.ImportGraph:
    return graph()


def test_every_module_belongs_to_a_layer(import_graph: grimp.ImportGraph) -> None:
    for module in import_graph.modules:
        owner(module)


def test_imports_point_inward(import_graph: grimp.ImportGraph) -> None:
    known = {f"{a} -> {b}" for a, b in KNOWN_WRONG_WAY}
    assert [line for line in wrong_way(import_graph) if line.split(":")[0] not in known] == []


def test_no_import_closes_a_circle(import_graph: grimp.ImportGraph) -> None:
    assert [c for c in cycles(import_graph) if c not in KNOWN_CYCLES] == []


def test_the_checks_catch_a_wrong_way_import_and_a_circle() -> None:
    g = grimp.ImportGraph()
    for module in ("pgf_events.domain.values", "pgf_events.cli.record", "pgf_events.domain.parsing"):
        g.add_module(module)
    g.add_import(importer="pgf_events.domain.values", imported="pgf_events.cli.record")
    g.add_import(importer="pgf_events.domain.parsing", imported="pgf_events.domain.values")
    g.add_import(importer="pgf_events.domain.values", imported="pgf_events.domain.parsing")
    assert wrong_way(g) == ["pgf_events.domain.values -> pgf_events.cli.record: domain must not import delivery"]
    assert cycles(g) == [["pgf_events.domain.parsing", "pgf_events.domain.values"]]


def main() -> int:
    g = graph()
    between: dict[tuple[str, str], int] = {}
    for module, imported in imports(g):
        a, b = owner(module)[1], owner(imported)[1]
        if a != b:
            between[(a, b)] = between.get((a, b), 0) + 1
    print("imports between packages (importer -> imported: count):")
    for (a, b), n in sorted(between.items()):
        print(f"  {a} -> {b}: {n}")
    bad, circles = wrong_way(g), cycles(g)
    print(f"\n{len(g.modules)} modules; wrong-way imports: {len(bad)}; import cycles: {len(circles)}")
    for line in bad:
        print("  WRONG WAY", line)
    for circle in circles:
        print("  CYCLE", " <-> ".join(circle))
    return 1 if bad or circles else 0


if __name__ == "__main__":
    raise SystemExit(main())
