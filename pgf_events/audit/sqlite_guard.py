"""The SQLite recorder's guard of its own append-only triggers (see :mod:`pgf_events.audit.recorders_sqlite`).

Opening a store never re-creates a trigger (that would hide a drop): a new store gets them, every write
is refused while one is missing or not as created, ``pgf audit verify`` names it, and an admin restores
it with ``pgf db upgrade``, logged in ``pgf_store``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgf_events.domain.errors import StoreError


def _normal(sql: str | None) -> str | None:
    """A trigger's SQL as sqlite_master keeps it, spaces collapsed (what ``CREATE TRIGGER`` was given)."""
    return " ".join(sql.split()) if sql is not None else None


class SQLiteTriggerGuard:
    """Mixed into the chained SQLite recorder (first, so its ``_create_table`` is the one that runs)."""

    TRIGGERS = 12  # every pgf_ trigger of the recorder's create statements
    create_table_statements: list[str]
    events_table_name: str
    datastore: Any

    if TYPE_CHECKING:  # the recorder's own
        def _lock_writers(self, c: Any) -> None: ...

        def _write_meta(self, c: Any, rows: list[tuple[str, str]]) -> None: ...

    def trigger_statements(self) -> dict[str, str]:
        """Each append-only trigger's name and its ``CREATE TRIGGER`` statement."""
        found = {}
        for statement in self.create_table_statements:
            if statement.startswith("CREATE TRIGGER IF NOT EXISTS "):
                found[statement.split()[5]] = statement
        assert len(found) == self.TRIGGERS
        return found

    def _create_table(self, c: Any) -> None:
        """A new store gets its tables and triggers; an existing one the tables it lacks, never a trigger.

        A missing trigger was dropped behind the engine's back (or the store was made before it):
        re-creating it on open would hide that. It stays missing, writes are refused and ``pgf audit
        verify`` names it, until an admin restores it with ``pgf db upgrade`` (logged).
        """
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.events_table_name,))
        new = c.fetchone() is None
        for statement in self.create_table_statements:
            if new or not statement.startswith("CREATE TRIGGER "):
                c.execute(statement)

    def missing_triggers(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            return len(self._missing_trigger_names(c))

    def _missing_trigger_names(self, c: Any) -> list[str]:
        """The append-only triggers that are not there (by name, with the table each must guard: a
        trigger of the right name on another table, or one that does nothing, does not count)."""
        c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'pgf_%'")
        present = dict(c.fetchall())
        return [name for name, statement in self.trigger_statements().items()
                if _normal(present.get(name)) != _normal(statement.replace(" IF NOT EXISTS", "", 1))]

    _guarded_schema: int | None = None  # the schema version at which every trigger was last seen standing

    def _require_triggers(self, c: Any) -> None:
        """Under the write lock: refuse to write while an append-only trigger is missing. Checked again
        only when the schema changed (``PRAGMA schema_version``, which every DROP or CREATE moves)."""
        c.execute("PRAGMA schema_version")
        version = int(c.fetchone()[0])
        if version == self._guarded_schema:
            return
        missing = self._missing_trigger_names(c)
        if missing:
            raise StoreError(
                f"{len(missing)} of the store's append-only triggers are missing ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}): they were dropped behind the engine's back, or the "
                "store was made by an older pgf; nothing was written. Run 'pgf audit verify'; an admin "
                "restores them with 'pgf db upgrade' (logged)")
        self._guarded_schema = version

    def restore_triggers(self, by: str, now: str) -> list[str]:
        """``pgf db upgrade`` (an admin): re-create the missing append-only triggers, logged in
        ``pgf_store`` (``triggers_restored_at:<time>``: how many, which, and who). [] when none is missing."""
        with self.datastore.transaction(commit=True) as c:
            self._lock_writers(c)
            missing = self._missing_trigger_names(c)
            statements = self.trigger_statements()
            for name in missing:
                c.execute(f"DROP TRIGGER IF EXISTS {name}")  # one of that name that does something else
                c.execute(statements[name])
            if missing:
                self._write_meta(c, [(f"triggers_restored_at:{now}", f"{len(missing)} by {by}: {' '.join(missing)}")])
        return missing
