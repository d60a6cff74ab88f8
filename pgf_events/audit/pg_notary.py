"""PostgreSQL as the notary: the database stamps, positions and chains every event itself.

Triggers on the events table, owned by the schema owner and running with its rights (``SECURITY
DEFINER``), do in the inserting transaction what no client may do:

- ``pgf_notarise`` (``BEFORE INSERT ... FOR EACH ROW``) stamps each row: ``recorded_by`` :=
  ``session_user`` (the authenticated login) and ``recorded_at`` := ``clock_timestamp()`` (the
  database's clock), refusing a time earlier than the previous event's; ``notification_id`` := the
  next position, under a row lock on the chain head (held to the commit), so positions are gap-free,
  in commit order, and cannot be chosen (or squatted) by a client. The rows the statement already
  stamped are after the head: the next position follows the latest of them (one index lookup);
- ``pgf_notarise_links`` (``AFTER INSERT ... FOR EACH STATEMENT``, over the statement's transition
  table ``pgf_new``) links them, in position order from the head's hash: ``sha256(previous || link
  material || recorded_by || recorded_at)`` (the encoding of :mod:`pgf_events.audit.chain`, scheme
  ``pgf-chain/2``), all of the statement's links in one ``INSERT``, then moves the head once. It
  refuses a row the stamp did not number; a statement that inserted nothing leaves the head alone.
  A failing statement (a refused row, a clock set back) leaves no event and no link: the links are
  written before the statement returns, in it.

That is the notary's triggers version 2, recorded as ``notary_triggers`` in ``pgf_store``. Stores made
before (no such key: version 1, :func:`notary_v1_ddl`) have one row trigger that hashed and wrote each
row's link itself (~20 µs a row, twice the stamp) and a statement trigger ``pgf_notarise_head`` moving
the head; they keep it, and verify as before, until ``pgf db upgrade`` (the owner) switches them:
the chain is the same, byte for byte (same positions, same material, same hashes), so a store holds
links of both versions in one chain and the verifiers do not tell them apart.

Logins get INSERT on the four payload columns only and no privilege at all on the chain, the head or
``pgf_store``: no login but the schema owner can write a link, insert an event without one, or
move the head. ``pgf_store`` records at creation that the store is chained and notarised.

The functions run with ``enable_seqscan = off``: their lookups (the latest event, the head) must use
the indexes whatever the table statistics say. A store analysed while it held a few events otherwise
gets a sequential scan for every row of a bulk insert, made while the statement inserts: quadratic
(16,000 import lines into a 20-patient store: 4.5 s, 48 s once analysed). Stores made before get the
same from the client (``SET LOCAL`` in the bulk transaction).
"""

from __future__ import annotations

from collections.abc import Callable

from pgf_events.audit.chain import CHAIN_TABLE, GENESIS, HEAD_TABLE, META_TABLE, NOTARY_SCHEME

# The notary's triggers, recorded in pgf_store under this key when a store gets them (absent: version 1,
# the row trigger that hashed and linked each row; 2: each row stamped, each statement's rows linked at once).
TRIGGERS_KEY = "notary_triggers"
TRIGGERS = "2"


# Both notaries' stamp, under the head's lock (times follow positions): the database's clock, refused
# when earlier than the last recorded event's (``last_at``).
_CLOCK_CHECK = """  stamped := clock_timestamp();  -- read under the head's lock: times follow positions
  IF last_at IS NOT NULL AND stamped < last_at THEN
    RAISE EXCEPTION 'pgf: the database clock (%) is earlier than the last recorded event (%); nothing was written',
      stamped, last_at;
  END IF;
"""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def link_material_sql(prefix: str, notary_from: str) -> str:
    """The link material of a stored row as SQL (``prefix`` names the row: ``NEW.`` or ``''``);
    rows at positions >= ``notary_from`` also carry the database's stamps."""
    p = prefix
    return (
        f"uuid_send({p}originator_id) || int8send({p}originator_version) "
        f"|| int4send(octet_length(convert_to(coalesce({p}topic, ''), 'UTF8'))) "
        f"|| convert_to(coalesce({p}topic, ''), 'UTF8') "
        f"|| int8send(octet_length(coalesce({p}state, ''::bytea))::bigint) || coalesce({p}state, ''::bytea) "
        f"|| CASE WHEN {p}notification_id >= {notary_from} THEN "
        f"int4send(octet_length(convert_to(coalesce({p}recorded_by, ''), 'UTF8'))) "
        f"|| convert_to(coalesce({p}recorded_by, ''), 'UTF8') "
        f"|| int8send(coalesce((extract(epoch FROM {p}recorded_at) * 1000000)::bigint, -1)) "
        "ELSE ''::bytea END"
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
  SELECT position, hash, recorded_at INTO h FROM {head} WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgf: the chain head is missing (removed behind the engine''s back); nothing was written';
  END IF;
  -- The head moves once per statement (pgf_notarise_head): rows this statement already linked are
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


def _columns_ddl(schema: str, events: str) -> list[str]:
    """The stamps' columns and ``pgf_store`` (both notaries)."""
    s, e = _q(schema), _q(events)
    return [
        f"ALTER TABLE {s}.{e} ADD COLUMN IF NOT EXISTS recorded_by text, ADD COLUMN IF NOT EXISTS recorded_at timestamptz",
        f"ALTER TABLE {s}.{_q(HEAD_TABLE)} ADD COLUMN IF NOT EXISTS recorded_at timestamptz",
        f"CREATE TABLE IF NOT EXISTS {s}.{_q(META_TABLE)} (key text PRIMARY KEY, value text NOT NULL)",
    ]


def notary_ddl(schema: str, events: str) -> list[str]:
    """Statements (run by the owner, idempotent) that make the database the notary (triggers version 2:
    each row stamped, each statement's rows linked at once); over a version 1 store they replace its
    row trigger's function and drop its head trigger (``pgf db upgrade``)."""
    s, e = _q(schema), _q(events)
    return [
        *_columns_ddl(schema, events),
        _stamp_function(schema, events),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise BEFORE INSERT ON {s}.{e} FOR EACH ROW EXECUTE FUNCTION {s}.pgf_notarise()",
        f"DROP TRIGGER IF EXISTS pgf_notarise_head ON {s}.{e}",
        f"DROP FUNCTION IF EXISTS {s}.pgf_notarise_head()",
        _links_function(schema, events),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise_links() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise_links AFTER INSERT ON {s}.{e} REFERENCING NEW TABLE AS pgf_new "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.pgf_notarise_links()",
    ]


def _stamp_function(schema: str, events: str) -> str:
    """Each row: its position and the database's stamps, under the head's lock (no hash, no link)."""
    s, e, head = _q(schema), _q(events), f"{_q(schema)}.{_q(HEAD_TABLE)}"
    return f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  h record;
  l record;
  stamped timestamptz;
  last_at timestamptz;
BEGIN
  SELECT position, recorded_at INTO h FROM {head} WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgf: the chain head is missing (removed behind the engine''s back); nothing was written';
  END IF;
  -- The rows this statement already stamped are after the head (pgf_notarise_links moves it at the end).
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


def _links_function(schema: str, events: str) -> str:
    """Once per insert statement, before it returns: its rows' links, hashed in position order from the
    head's hash (the formula of the row trigger of version 1), inserted in one statement; the head
    moved once. A statement that inserted nothing leaves the head alone."""
    s = _q(schema)
    chain, head = f"{s}.{_q(CHAIN_TABLE)}", f"{s}.{_q(HEAD_TABLE)}"
    return f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise_links() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  h record;
  r record;
  digest bytea;
  n integer := 0;
  positions bigint[];
  streams uuid[];
  versions bigint[];
  hashes bytea[];
  last_at timestamptz;
BEGIN
  PERFORM FROM pgf_new LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT position, hash INTO h FROM {head} WHERE id = 1 FOR UPDATE;
  digest := h.hash;
  FOR r IN SELECT notification_id, originator_id, originator_version, recorded_at,
                  {link_material_sql("", "0")} AS material FROM pgf_new ORDER BY notification_id LOOP
    n := n + 1;
    IF r.notification_id IS DISTINCT FROM h.position + n OR r.recorded_at IS NULL THEN  -- pgf_notarise did not run
      RAISE EXCEPTION 'pgf: an inserted event at position % (the chain''s next: %) was not stamped by the notary; '
        'nothing was written', r.notification_id, h.position + n;
    END IF;
    digest := sha256(digest || r.material);
    positions[n] := r.notification_id;
    streams[n] := r.originator_id;
    versions[n] := r.originator_version;
    hashes[n] := digest;
    last_at := r.recorded_at;
  END LOOP;
  INSERT INTO {chain} (position, originator_id, originator_version, hash, backfilled)
    SELECT u.p, u.o, u.v, u.d, false FROM unnest(positions, streams, versions, hashes) AS u(p, o, v, d);
  UPDATE {head} SET position = positions[n], hash = digest, originator_id = streams[n],
    originator_version = versions[n], recorded_at = last_at WHERE id = 1;
  RETURN NULL;
END $fn$"""


def triggers_ddl(triggers: str) -> Callable[[str, str], list[str]]:
    """The DDL of the notary's triggers of that version."""
    return notary_ddl if triggers == TRIGGERS else notary_v1_ddl


def init_new_store_sql(schema: str, triggers: str = TRIGGERS) -> list[tuple[str, tuple[object, ...]]]:
    """For a store created now: an empty head (position 0) and the markers that it is chained from birth
    (and which notary triggers it has; a store of version 1 never wrote that)."""
    s = _q(schema)
    head, meta = f"{s}.{_q(HEAD_TABLE)}", f"{s}.{_q(META_TABLE)}"
    rows = [("chain", NOTARY_SCHEME), ("notary_from", "1"), ("site_scope", "1")]  # site scope: pg_sites
    rows += [(TRIGGERS_KEY, triggers)] if triggers != "1" else []
    out: list[tuple[str, tuple[object, ...]]] = [(
        f"INSERT INTO {head} (id, position, hash, originator_id, originator_version) "
        "VALUES (1, 0, %s, '00000000-0000-0000-0000-000000000000', 0) ON CONFLICT (id) DO NOTHING", (GENESIS,)
    )]
    out += [(f"INSERT INTO {meta} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", row) for row in rows]
    out += [(f"INSERT INTO {meta} (key, value) VALUES ('created_at', clock_timestamp()::text), "
             "('created_by', session_user), ('store_id', gen_random_uuid()::text) ON CONFLICT (key) DO NOTHING", ())]
    return out
