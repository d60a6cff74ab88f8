"""The read models' version: a hash of the code that derives them, so none is ever bumped by hand.

A stored projection row is a function of the event log, the protocol parameters and this code.
:func:`derivation_digest` hashes the source of every module the derivation runs (the rules, the
value classes the records are rebuilt into, the derivation, the report sections and the slices),
so any change to them, even one a developer forgot to announce, makes stored read models rebuild
themselves on first use. A change to a comment costs one rebuild; a stale read model costs more.
That the list leaves out no module whose code runs (or whose names are imported) while the rows are
made is checked by ``tests/projections/test_version_coverage.py``, which traces the rows' making.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

# Modules and packages whose source decides what a projection row holds.
DERIVATION_CODE: tuple[str, ...] = (
    "pgf_events.domain.rules",  # package: every rule module
    "pgf_events.domain.values", "pgf_events.domain.record", "pgf_events.domain.fields",
    "pgf_events.domain.entries", "pgf_events.domain.patient", "pgf_events.domain.vocabulary",
    "pgf_events.projections.derive", "pgf_events.projections.clinical", "pgf_events.projections.follow_up",
    "pgf_events.projections.stats", "pgf_events.projections.slices",
    "pgf_events.projections.sections",  # package: every report section
    # what those modules call or read (tests/projections/test_version_coverage.py finds them)
    "pgf_events.protocol", "pgf_events.formatting", "pgf_events.domain.parsing", "pgf_events.domain.integrity",
    "pgf_events.domain.errors",
)


def _modules(name: str) -> list[ModuleType]:
    module = importlib.import_module(name)
    found = [module]
    if hasattr(module, "__path__"):  # a package: its modules too, in name order
        for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
            found += _modules(f"{name}.{info.name}")
    return found


@functools.cache
def derivation_digest() -> str:
    """SHA-256 (hex, 16 characters) over the derivation code's module names and source bytes."""
    digest = hashlib.sha256()
    for name in DERIVATION_CODE:
        for module in _modules(name):
            digest.update(module.__name__.encode() + b"\0")
            digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]
