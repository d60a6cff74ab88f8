"""The domain package makes ``dataclasses`` compile each generated method text once per process
(``pgf_events.domain._exec_once``): the event classes must come out exactly as without it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from pgf_events.domain.patient import Patient

PROBE = r'''
import dataclasses, inspect, json, sys
import pgf_events.domain
if sys.argv[1] == "plain":
    del dataclasses.exec  # the builtin again, before any event class is made
from pgf_events.domain import imports, lock, review, users
from pgf_events.domain.patient import Patient
classes = [c for owner in (Patient, review.Review, users.UserDirectory, lock.StoreLock, imports.ImportBatch, review, users)
           for c in vars(owner).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]
out = {}
for cls in classes:
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        fn = vars(cls).get(name)
        if fn is not None:
            out[f"{cls.__module__}.{cls.__qualname__}.{name}"] = [
                str(inspect.signature(fn)), repr(fn.__annotations__), fn.__qualname__, fn.__code__.co_flags,
                fn.__code__.co_code.hex(), fn.__code__.co_filename, repr(fn.__defaults__)]
print(json.dumps({"classes": len(classes), "compiled": len(pgf_events.domain._COMPILED), "methods": out}))
'''


def _probe(mode: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_event_classes_are_made_as_without_the_memo() -> None:
    memo, plain = _probe("memo"), _probe("plain")
    assert memo["classes"] == plain["classes"] >= 20
    assert memo["methods"] == plain["methods"]
    assert plain["compiled"] == 0 < memo["compiled"]  # the memo was used, and only in the first run


def test_instances_behave_alike() -> None:
    oid, now = uuid4(), datetime.now(UTC)
    a = Patient.Voided(originator_id=oid, originator_version=2, timestamp=now, supersedes="S001#1", reason="dup",
                       recorded_by="u", source=None)
    b = Patient.Voided(originator_id=oid, originator_version=2, timestamp=now, supersedes="S001#1", reason="dup",
                       recorded_by="u", source=None)
    assert a == b and hash(a) == hash(b) and "supersedes='S001#1'" in repr(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.reason = "x"  # type: ignore[misc]
