"""The PostgreSQL recorder's guard of its own append-only and notary triggers (see
:mod:`pgf_events.audit.recorders_postgres`): a missing, disabled or hollowed-out one is named by
``pgf audit verify``, refuses every write, and is restored only by ``pgf db upgrade`` (logged)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import PersistenceError

from pgf_events.audit.chain import CHAIN_TABLE, HEAD_TABLE, META_TABLE
from pgf_events.audit.pg_notary import _q, notary_trigger_names, triggers_version
from pgf_events.audit.pg_notary_versions import triggers_ddl
from pgf_events.domain.errors import StoreError


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# The append-only guards' functions (their source, as pg_proc keeps it: checked by verify and writes).
GUARD_BODIES = {
    "pgf_refuse_change": (
        " BEGIN RAISE EXCEPTION 'pgf: % on %.% refused: the event store is append-only', "
        "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END "),
    "pgf_head_forward_only": (
        " BEGIN IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.position > OLD.position THEN RETURN NEW; "
        "END IF; RAISE EXCEPTION 'pgf: % on the chain head refused: it only moves forward', TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END "),
}
# pg_trigger.tgtype: FOR EACH ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32
_APPEND_ONLY, _NO_TRUNCATE, _BEFORE_INSERT_ROW, _AFTER_INSERT_STATEMENT = 1 | 2 | 8 | 16, 2 | 32, 1 | 2 | 4, 4
_NOTARY_TGTYPES = {"pgf_notarise": _BEFORE_INSERT_ROW, "pgf_notarise_begin": 2 | 4,  # BEFORE INSERT, each statement
                   "pgf_notarise_links": _AFTER_INSERT_STATEMENT}


class PostgresTriggerGuard:
    """Mixed into the chained PostgreSQL recorder: which triggers must stand, the check each write makes
    in the statement that takes the writers' lock, and ``pgf db upgrade``'s restoring of them."""

    datastore: Any
    events_table_name: str
    meta: dict[str, str]
    guard_statements: list[Any]

    if TYPE_CHECKING:  # the recorder's own
        @property
        def notarised(self) -> bool: ...

        @property
        def writers_key(self) -> int: ...

        def _lock_writers(self, c: Any) -> None: ...

        def _write_meta(self, c: Any, rows: list[tuple[str, str]]) -> None: ...

        def read_meta(self) -> dict[str, str]: ...

    def expected_triggers(self) -> list[tuple[str, str, int, str]]:
        """(table, trigger, its pg_trigger.tgtype, its function) of every append-only and notary trigger
        this store must have (notary: those of the store's triggers version,
        :func:`pgf_events.audit.pg_notary.notary_trigger_names`; the marker table is guarded from the
        notary on). A trigger of that name that fires at other times or calls another function, or a
        guard function whose source was replaced, does not count."""
        tables = [self.events_table_name, CHAIN_TABLE, HEAD_TABLE] + ([META_TABLE] if self.notarised else [])
        guards = [(table, "pgf_append_only", _APPEND_ONLY,
                   "pgf_head_forward_only" if table == HEAD_TABLE else "pgf_refuse_change") for table in tables]
        guards += [(table, "pgf_no_truncate", _NO_TRUNCATE, "pgf_refuse_change") for table in tables]
        notary = notary_trigger_names(triggers_version(self.meta)) if self.notarised else []
        return guards + [(self.events_table_name, name, _NOTARY_TGTYPES[name], name) for name in notary]

    # The expected triggers that stand as expected, as text 'table.trigger' (see _trigger_params): enabled,
    # firing when they must, calling the store's own function (the guards' with their source unchanged).
    STANDING_TRIGGERS_SQL = (
        "SELECT coalesce(array_agg(c.relname || '.' || t.tgname), '{}') AS standing FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace ns ON ns.oid = c.relnamespace "
        "JOIN pg_proc p ON p.oid = t.tgfoid WHERE ns.nspname = %s AND p.pronamespace = ns.oid "
        "AND t.tgenabled <> 'D' AND c.relname || '.' || t.tgname || '.' || t.tgtype || '.' || p.proname = ANY(%s) "
        "AND (p.proname <> ALL(%s) OR md5(p.prosrc) = ANY(%s))")

    def _trigger_params(self) -> tuple[str, list[str], list[str], list[str]]:
        keys = [f"{table}.{name}.{tgtype}.{function}" for table, name, tgtype, function in self.expected_triggers()]
        return (self.datastore.schema, keys, list(GUARD_BODIES),
                [hashlib.md5(body.encode()).hexdigest() for body in GUARD_BODIES.values()])  # noqa: S324 (a fingerprint)

    def _missing_trigger_names(self, standing: Sequence[str]) -> list[str]:
        present = set(standing)
        names = [f"{table}.{name}" for table, name, _, _ in self.expected_triggers()]
        return [name for name in names if name not in present]

    def missing_triggers(self) -> int:
        """How many append-only and notary triggers are missing or disabled."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.STANDING_TRIGGERS_SQL, self._trigger_params())  # type: ignore[arg-type]
            return len(self._missing_trigger_names(curs.fetchone()["standing"]))

    def _lock_reading_triggers(self, curs: Any, lock: str) -> list[str]:
        """Take the writers' lock (``lock``: the advisory lock function) and, in the same round trip, read
        which triggers stand; returns the missing or disabled ones (see :meth:`_refuse_without`)."""
        curs.execute(f"SELECT {lock}(%s), ({self.STANDING_TRIGGERS_SQL}) AS standing",  # type: ignore[arg-type]
                     (self.writers_key, *self._trigger_params()))
        return self._missing_trigger_names(curs.fetchone()["standing"])

    @staticmethod
    def _refuse_without(missing: list[str]) -> None:
        """A write while a trigger is missing or disabled is refused (raised inside its transaction, after
        the insert, so a chain the notary finds broken is named first, as verify does)."""
        if missing:
            raise StoreError(
                f"{len(missing)} of the store's append-only or notary triggers are missing or disabled "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): they were dropped behind the "
                "engine's back; nothing was written. Run 'pgf audit verify'; the schema's owner restores them "
                "with 'pgf db upgrade' (logged)")

    def restore_triggers(self, by: str, now: str) -> list[str]:
        """``pgf db upgrade`` (the schema owner): re-create and enable every missing or disabled append-only
        and notary trigger (the notary of the store's own version), logged in ``pgf_store``; [] if none is."""
        if not self.notarised:
            return []
        params = self._trigger_params()
        schema = params[0]
        try:
            with self.datastore.transaction(commit=True) as c:
                self._lock_writers(c)
                c.execute(self.STANDING_TRIGGERS_SQL, params)  # type: ignore[arg-type]
                missing = self._missing_trigger_names(c.fetchone()["standing"])
                if not missing:
                    return []
                for statement in self.guard_statements:
                    c.execute(statement)
                for text in triggers_ddl(triggers_version(self.meta))(schema, self.events_table_name):
                    c.execute(text)
                for table, name, _, _ in self.expected_triggers():
                    c.execute(f"ALTER TABLE {_q(schema)}.{_q(table)} ENABLE TRIGGER {_q(name)}")
                c.execute(self.STANDING_TRIGGERS_SQL, params)  # type: ignore[arg-type]
                assert not self._missing_trigger_names(c.fetchone()["standing"])
                self._write_meta(c, [(f"triggers_restored_at:{now}", f"{len(missing)} by {by}: {' '.join(missing)}")])
        except PersistenceError as e:
            raise StoreError(f"cannot restore the store's triggers: {_first_line(e)} (run it as the schema's owner)"
                             ) from None
        finally:
            self.meta = self.read_meta()
        return missing
