"""A patient's entries: every event with its effective state after the corrections and voids that
point at it. The Patient aggregate mixes this in; only its event ``apply`` methods call the
``_add_*`` methods here, so the state changes only through events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from pgf_events.domain.errors import EventNotFoundError
from pgf_events.domain.record import Record

CORRECTION, VOID = "correct", "void"
SIGN = "sign"


@attrs.define
class Entry:
    """One event in the patient's history with its effective state after corrections and voids."""

    version: int
    kind: str  # a record kind, "correct" or "void"
    original: Record | None = None  # the record as first entered
    record: Record | None = None  # the record with every standing correction applied
    changes: dict[str, Any] = attrs.field(factory=dict)  # a correction's own (effective) changes
    target: int | None = None  # the version a correction or void supersedes
    reason: str | None = None
    voided: bool = False
    children: list[int] = attrs.field(factory=list)  # corrections and voids pointing here


class EntryLog:
    """The entries of one stream, keyed by version, and the index of versions by record kind."""

    subject: str
    version: int
    entries: dict[int, Entry]
    _kinds: dict[str, list[int]]

    def ref(self, version: int) -> str:
        return f"{self.subject}#{version}"

    def _existing(self, version: int) -> Entry:
        if version not in self.entries:
            raise EventNotFoundError(f"patient {self.subject} has no event {self.ref(version)} (latest is #{self.version})")
        return self.entries[version]

    def _entry(self, version: int) -> Entry:
        return self.entries[version]

    def _root(self, version: int) -> int:
        entry = self.entries[version]
        while entry.kind in (CORRECTION, VOID) and entry.target is not None:
            entry = self.entries[entry.target]
        return entry.version

    # ------------------------------------------------------------------ state changes (events only)

    def _add_record(self, version: int, record: Record) -> None:
        self.entries[version] = Entry(version=version, kind=record.KIND, original=record, record=record)
        self._kinds.setdefault(record.KIND, []).append(version)

    def _add_change(self, version: int, kind: str, supersedes: str, reason: str, changes: dict[str, Any]) -> None:
        target = int(supersedes.rpartition("#")[2])
        self.entries[version] = Entry(version=version, kind=kind, target=target, reason=reason, changes=dict(changes))
        self.entries[target].children.append(version)
        self._resolve(self._root(target))

    def _resolve(self, root: int) -> None:
        """Recompute voided flags and effective values for a record and everything superseding it."""
        self._resolve_voided(root)
        entry = self.entries[root]
        entry.record = self._record_with(root)

    def _resolve_voided(self, version: int) -> None:
        entry = self.entries[version]
        for child in entry.children:
            self._resolve_voided(child)
        entry.voided = any(
            self.entries[c].kind == VOID and not self.entries[c].voided for c in entry.children
        )

    def _effective_changes(self, version: int, replace: Mapping[int, dict[str, Any]]) -> dict[str, Any]:
        entry = self.entries[version]
        changes = dict(replace.get(version, entry.changes))
        if version in replace:
            return changes
        for child in entry.children:
            c = self.entries[child]
            if c.kind == CORRECTION and not c.voided:
                changes.update(self._effective_changes(child, replace))
        return changes

    def _record_with(self, root: int, replace: Mapping[int, dict[str, Any]] | None = None) -> Record:
        """The root record's original value with its standing corrections applied in order."""
        entry = self.entries[root]
        assert entry.original is not None
        values = entry.original.as_input()
        for child in entry.children:
            c = self.entries[child]
            if c.kind == CORRECTION and not c.voided:
                values.update(self._effective_changes(child, replace or {}))
        return restore(type(entry.original), values)


def restore(cls: type[Record], values: Mapping[str, Any]) -> Record:
    """Rebuild a stored record without re-running validation (stored facts are never re-judged)."""
    instance = object.__new__(cls)
    setattr_ = object.__setattr__
    for name, default, factory in _restore_plan(cls):
        value = values.get(name, default) if factory is None or name in values else factory()
        if name == "serious" and isinstance(value, list):
            value = tuple(value)
        setattr_(instance, name, value)
    return instance


def restorer(cls: type[Record]) -> Callable[[Mapping[str, Any]], Record]:
    """:func:`restore` for one class, its plan looked up once (decoding calls it for every record)."""
    plan = _restore_plan(cls)
    new, setattr_ = object.__new__, object.__setattr__

    def restore_one(values: Mapping[str, Any]) -> Record:
        instance = new(cls)
        get = values.get
        for name, default, factory in plan:
            value = get(name, default) if factory is None or name in values else factory()
            if name == "serious" and isinstance(value, list):
                value = tuple(value)
            setattr_(instance, name, value)
        return instance

    return restore_one


RestorePlan = tuple[tuple[str, Any, Callable[[], Any] | None], ...]
_PLANS: dict[type, RestorePlan] = {}


def _restore_plan(cls: type[Record]) -> RestorePlan:
    """Per field: name, the default when absent (None if required), and the default's factory if any."""
    if cls in _PLANS:
        return _PLANS[cls]
    plan = []
    for a in attrs.fields(cls):
        default = a.default if a.default is not attrs.NOTHING else None
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            plan.append((a.name, None, default.factory))  # type: ignore[union-attr]
        else:
            plan.append((a.name, default, None))
    _PLANS[cls] = tuple(plan)
    return _PLANS[cls]
