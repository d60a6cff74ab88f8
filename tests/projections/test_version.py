"""The read-model version is a hash of the derivation code: changed code rebuilds stored projections."""

from __future__ import annotations

import pkgutil

import pytest

from pgf_events.application import TrialConduct
from pgf_events.domain import rules
from pgf_events.projections import sections, store, version
from pgf_events.projections.store import ProjectionStore
from pgf_events.protocol import Protocol
from pgf_events.store import parse_url
from tests.conftest import NOW
from tests.projections.common import lab, treated


def test_every_rule_and_section_module_is_part_of_the_hash() -> None:
    hashed = {m.__name__ for name in version.DERIVATION_CODE for m in version._modules(name)}
    for package in (rules, sections):
        for info in pkgutil.iter_modules(package.__path__):
            assert f"{package.__name__}.{info.name}" in hashed
    assert len(version.derivation_digest()) == 16


def test_changed_derivation_code_rebuilds_the_stored_projections(sqlite_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app = TrialConduct(parse_url(sqlite_url), Protocol(), clock=lambda: NOW)
    treated(app)
    lab(app, "2025-03-12", anc=0.4)
    first = ProjectionStore(app)
    first.catch_up()
    first.close()
    again = ProjectionStore(app, notify=(quiet := []).append)
    again.catch_up()
    assert not quiet, "the same code must not rebuild"
    again.close()
    monkeypatch.setattr(store, "derivation_digest", lambda: "0123456789abcdef")  # as if the code changed
    messages: list[str] = []
    changed = ProjectionStore(app, notify=messages.append)
    changed.catch_up()
    assert messages and "rebuilding" in messages[0]
    assert changed.rows("dosing")[0]["subject"] == "S001"
    changed.close()
    app.close()
