"""The notary's triggers of every version (:mod:`pgf_events.audit.pg_notary` holds the current one, 3):
:func:`triggers_ddl` gives a version's DDL. Versions 1 and 2 are kept here because stores made with them
keep their triggers until ``pgf db upgrade`` switches them: the trigger guard (:mod:`pgf_events.audit.pg_guard`)
checks and restores such a store's own, and the tests show that every version writes the same chain, byte
for byte, and that the upgrade from each keeps it."""

from __future__ import annotations

from collections.abc import Callable

from pgf_events.audit.chain import CHAIN_TABLE, HEAD_TABLE
from pgf_events.audit.pg_notary import (
    _CLOCK_CHECK,
    TRIGGERS,
    _columns_ddl,
    _drop_begin,
    _links_function,
    _lock_head,
    _q,
    link_material_sql,
    notary_ddl,
)


def notary_v1_ddl(schema: str, events: str) -> list[str]:
    """The notary of stores made before the statement-level one (triggers version 1), which they keep
    until ``pgf db upgrade``: each row hashed and linked by the row trigger. Kept to test that the
    statement-level notary writes the same chain, and the upgrade from it."""
    s, e = _q(schema), _q(events)
    chain, head = f"{s}.{_q(CHAIN_TABLE)}", f"{s}.{_q(HEAD_TABLE)}"
    return [
        *_columns_ddl(schema, events),
        f"DROP TRIGGER IF EXISTS pgf_notarise_links ON {s}.{e}",
        f"DROP FUNCTION IF EXISTS {s}.pgf_notarise_links()",
        *_drop_begin(schema, events),
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  h record;
  l record;
  who text := session_user;
  stamped timestamptz;
  last_at timestamptz;
  previous bytea;
  digest bytea;
BEGIN
{_lock_head(head, 'position, hash, recorded_at', 'h')}  -- The head moves once per statement (pgf_notarise_head): rows this statement already linked are
  -- after it. (Moving it for every row made a bulk insert quadratic: each row's lock walked every
  -- version of the head row the transaction had made.)
  SELECT c.position, c.hash INTO l FROM {chain} c WHERE c.position > h.position ORDER BY c.position DESC LIMIT 1;
  IF FOUND THEN
    previous := l.hash;
    NEW.notification_id := l.position + 1;
    SELECT x.recorded_at INTO last_at FROM {s}.{e} x WHERE x.notification_id = l.position;
  ELSE
    previous := h.hash;
    NEW.notification_id := h.position + 1;
    last_at := h.recorded_at;
  END IF;
{_CLOCK_CHECK}  NEW.recorded_by := who;
  NEW.recorded_at := stamped;
  digest := sha256(previous || {link_material_sql("NEW.", "0")});
  INSERT INTO {chain} (position, originator_id, originator_version, hash, backfilled)
    VALUES (NEW.notification_id, NEW.originator_id, NEW.originator_version, digest, false);
  RETURN NEW;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise BEFORE INSERT ON {s}.{e} FOR EACH ROW EXECUTE FUNCTION {s}.pgf_notarise()",
        # Once per insert statement, before it returns: the head names the latest link.
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise_head() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  h record;
  l record;
BEGIN
  SELECT position INTO h FROM {head} WHERE id = 1 FOR UPDATE;
  SELECT c.position, c.hash, c.originator_id, c.originator_version INTO l FROM {chain} c
    WHERE c.position > h.position ORDER BY c.position DESC LIMIT 1;
  IF FOUND THEN
    UPDATE {head} SET position = l.position, hash = l.hash, originator_id = l.originator_id,
      originator_version = l.originator_version,
      recorded_at = (SELECT x.recorded_at FROM {s}.{e} x WHERE x.notification_id = l.position) WHERE id = 1;
  END IF;
  RETURN NULL;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise_head() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise_head AFTER INSERT ON {s}.{e} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {s}.pgf_notarise_head()",
    ]


def notary_v2_ddl(schema: str, events: str) -> list[str]:
    """The notary of triggers version 2 (each row stamped under the head's lock with two lookups, each
    statement's rows linked at once), which stores made with it keep until ``pgf db upgrade``. Kept to
    test that version 3 writes the same chain, and the upgrade from it."""
    s, e = _q(schema), _q(events)
    return [
        *_columns_ddl(schema, events),
        *_drop_begin(schema, events),
        _stamp_v2_function(schema, events),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise BEFORE INSERT ON {s}.{e} FOR EACH ROW EXECUTE FUNCTION {s}.pgf_notarise()",
        f"DROP TRIGGER IF EXISTS pgf_notarise_head ON {s}.{e}",
        f"DROP FUNCTION IF EXISTS {s}.pgf_notarise_head()",
        _links_function(schema, events, times=False),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise_links() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise_links AFTER INSERT ON {s}.{e} REFERENCING NEW TABLE AS pgf_new "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.pgf_notarise_links()",
    ]


def _stamp_v2_function(schema: str, events: str) -> str:
    """Version 2, each row: its position and the database's stamps, under the head's lock (no hash, no link)."""
    s, e, head = _q(schema), _q(events), f"{_q(schema)}.{_q(HEAD_TABLE)}"
    return f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  h record;
  l record;
  stamped timestamptz;
  last_at timestamptz;
BEGIN
{_lock_head(head, 'position, recorded_at', 'h')}  -- The rows this statement already stamped are after the head (pgf_notarise_links moves it at the end).
  SELECT x.notification_id, x.recorded_at INTO l FROM {s}.{e} x WHERE x.notification_id > h.position
    ORDER BY x.notification_id DESC LIMIT 1;
  IF FOUND THEN
    NEW.notification_id := l.notification_id + 1;
    last_at := l.recorded_at;
  ELSE
    NEW.notification_id := h.position + 1;
    last_at := h.recorded_at;
  END IF;
{_CLOCK_CHECK}  NEW.recorded_by := session_user;
  NEW.recorded_at := stamped;
  RETURN NEW;
END $fn$"""


def triggers_ddl(triggers: str) -> Callable[[str, str], list[str]]:
    """The DDL of the notary's triggers of that version."""
    return {TRIGGERS: notary_ddl, "2": notary_v2_ddl}.get(triggers, notary_v1_ddl)
