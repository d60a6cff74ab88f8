"""PostgreSQL as the notary: the database stamps, positions and chains every event itself.

Triggers on the events table, owned by the schema owner and running with its rights (``SECURITY
DEFINER``), do in the inserting transaction what no client may do:

- ``pgf_notarise`` (``BEFORE INSERT ... FOR EACH ROW``) stamps each row: ``recorded_by`` :=
  ``session_user`` (the authenticated login) and ``recorded_at`` := ``clock_timestamp()`` (the
  database's clock); ``notification_id`` := the next position. The statement's first row takes a row
  lock on the chain head (held to the commit) and reads its position (``pgf_notarise_first``: after
  any row written behind the notary's back, which the links trigger then names), so positions are
  gap-free, in commit order, and cannot be chosen (or squatted) by a client, and times are read under that lock;
  the next rows count on from it in a transaction-local setting (``pgf.notary_next``, emptied by
  ``pgf_notarise_begin``, ``BEFORE INSERT ... FOR EACH STATEMENT``, which locks and reads nothing).
  No query per row after the first: ~10 µs a row less than version 2, which looked the head and the
  statement's latest row up for every row;
- ``pgf_notarise_links`` (``AFTER INSERT ... FOR EACH STATEMENT``, over the statement's transition
  table ``pgf_new``) links them, in position order from the head's hash: ``sha256(previous || link
  material || recorded_by || recorded_at)`` (the encoding of :mod:`pgf_events.audit.chain`, scheme
  ``pgf-chain/2``), all of the statement's links in one ``INSERT``, then moves the head once. It
  refuses a row the stamp did not number (not the head's next, one by one: a client that writes the
  setting itself gets its statement refused, never a gap or a chosen position) and a row stamped
  earlier than the one before it (the head's, for the first: a clock set back). A statement that
  inserted nothing leaves the head alone (not even locked). A failing statement (a refused row, a
  clock set back) leaves no event and no link: the links are written before the statement returns,
  in it; a savepoint rolled back takes its setting back with its rows and its lock.

That is the notary's triggers version 3, recorded in ``pgf_store`` (:func:`triggers_version`). Stores
made before keep theirs, and verify as before, until ``pgf db upgrade`` (the owner) switches them:
version 1 (no key) has one row trigger that hashed and wrote each row's link itself (~20 µs a row,
twice the stamp) and a statement trigger ``pgf_notarise_head`` moving the head; version 2 stamps each
row under the head's lock with two lookups and checks the clock there. Their DDL lives in
:mod:`pgf_events.audit.pg_notary_versions`. The chain is the same, byte for byte (same positions, same
material, same hashes), so a store holds links of every version in one chain and the verifiers do not tell them apart.

Logins get INSERT on the four payload columns only and no privilege at all on the chain, the head or
``pgf_store``: no login but the schema owner can write a link, insert an event without one, or
move the head. ``pgf_store`` records at creation that the store is chained and notarised.

The functions that look rows up (the links; version 2's stamp) run with ``enable_seqscan = off``: their
lookups (the latest event, the head) must use the indexes whatever the table statistics say. A store analysed while it held a few events otherwise
gets a sequential scan for every row of a bulk insert, made while the statement inserts: quadratic
(16,000 import lines into a 20-patient store: 4.5 s, 48 s once analysed). Stores made before get the
same from the client (``SET LOCAL`` in the bulk transaction).
"""

from __future__ import annotations

from pgf_events.audit.chain import CHAIN_TABLE, GENESIS, HEAD_TABLE, META_TABLE, NOTARY_SCHEME

# The notary's triggers, recorded in pgf_store under this key when a store gets them (absent: version 1,
# the row trigger that hashed and linked each row; 2: each row stamped, each statement's rows linked at once;
# 3: as 2, the row stamp without a query after the statement's first row, times checked with the links).
TRIGGERS_KEY = "notary_triggers"
TRIGGERS = "3"
# Version 3's count of the statement's positions (transaction-local; what a client sets there is checked).
NEXT_SETTING = "pgf.notary_next"


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


def _lock_head(head: str, columns: str, into: str) -> str:
    """The notaries' plpgsql: lock the chain head to the commit and read ``columns`` of it into ``into``;
    a head that is gone refuses the statement."""
    return (f"  SELECT {columns} INTO {into} FROM {head} WHERE id = 1 FOR UPDATE;\n"
            "  IF NOT FOUND THEN\n"
            "    RAISE EXCEPTION 'pgf: the chain head is missing (removed behind the engine''s back); nothing was written';\n"
            "  END IF;\n")


def _columns_ddl(schema: str, events: str) -> list[str]:
    """The stamps' columns and ``pgf_store`` (both notaries)."""
    s, e = _q(schema), _q(events)
    return [
        f"ALTER TABLE {s}.{e} ADD COLUMN IF NOT EXISTS recorded_by text, ADD COLUMN IF NOT EXISTS recorded_at timestamptz",
        f"ALTER TABLE {s}.{_q(HEAD_TABLE)} ADD COLUMN IF NOT EXISTS recorded_at timestamptz",
        f"CREATE TABLE IF NOT EXISTS {s}.{_q(META_TABLE)} (key text PRIMARY KEY, value text NOT NULL)",
    ]


def _drop_begin(schema: str, events: str) -> list[str]:
    """Version 3's statement start and first-row function, gone from a store of an older version."""
    s, e = _q(schema), _q(events)
    return [f"DROP TRIGGER IF EXISTS pgf_notarise_begin ON {s}.{e}", f"DROP FUNCTION IF EXISTS {s}.pgf_notarise_begin()",
            f"DROP FUNCTION IF EXISTS {s}.pgf_notarise_first()"]


def notary_ddl(schema: str, events: str) -> list[str]:
    """Statements (run by the owner, idempotent) that make the database the notary (triggers version 3:
    each row stamped, each statement's rows linked at once); over a store of version 1 or 2 they replace
    its functions, drop version 1's head trigger and add the statement's start (``pgf db upgrade``)."""
    s, e = _q(schema), _q(events)
    return [
        *_columns_ddl(schema, events),
        _begin_function(schema),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise_begin() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise_begin BEFORE INSERT ON {s}.{e} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {s}.pgf_notarise_begin()",
        _first_function(schema, events),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise_first() FROM PUBLIC",
        _stamp_function(schema),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise BEFORE INSERT ON {s}.{e} FOR EACH ROW EXECUTE FUNCTION {s}.pgf_notarise()",
        f"DROP TRIGGER IF EXISTS pgf_notarise_head ON {s}.{e}",
        f"DROP FUNCTION IF EXISTS {s}.pgf_notarise_head()",
        _links_function(schema, events, times=True),
        f"REVOKE ALL ON FUNCTION {s}.pgf_notarise_links() FROM PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_notarise_links AFTER INSERT ON {s}.{e} REFERENCING NEW TABLE AS pgf_new "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.pgf_notarise_links()",
    ]


def _begin_function(schema: str) -> str:
    """Version 3, once per insert statement before its rows: the statement's count of positions starts
    afresh (its first row reads the head, under its lock). Nothing is locked or read here: a statement
    that inserts nothing leaves the head alone."""
    return f"""CREATE OR REPLACE FUNCTION {_q(schema)}.pgf_notarise_begin() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM set_config('{NEXT_SETTING}', '', true);
  RETURN NULL;
END $fn$"""


def _first_function(schema: str, events: str) -> str:
    """Version 3, the statement's first row only: lock the head (to the commit) and return the next
    position. Rows after the head that no statement of the notary linked (written behind its back,
    its triggers dropped) come first, as version 2 numbered after them: the statement's rows follow
    them and the links trigger refuses it, naming the first (not a duplicate position)."""
    s, e, head = _q(schema), _q(events), f"{_q(schema)}.{_q(HEAD_TABLE)}"
    return f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise_first() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  p bigint;
  l bigint;
BEGIN
{_lock_head(head, 'position', 'p')}  SELECT x.notification_id INTO l FROM {s}.{e} x WHERE x.notification_id > p ORDER BY x.notification_id DESC LIMIT 1;
  RETURN coalesce(l, p) + 1;
END $fn$"""


def _stamp_function(schema: str) -> str:
    """Version 3, each row: its position and the database's stamps. The statement's first row locks
    and reads the head (``pgf_notarise_first``); the next rows' positions follow in a transaction-local
    setting (no query). A client can set that setting too: whatever it makes of the positions or the
    order of the times, the links trigger refuses the statement unless its rows follow the head one
    by one, each stamped, none earlier than the one before (as the stamp of version 2 refused a clock
    set back)."""
    s = _q(schema)
    return f"""CREATE OR REPLACE FUNCTION {s}.pgf_notarise() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  next text := current_setting('{NEXT_SETTING}', true);
  p bigint;
BEGIN
  IF next IS NULL OR next = '' THEN
    p := {s}.pgf_notarise_first();
  ELSE
    p := next::bigint;
  END IF;
  next := set_config('{NEXT_SETTING}', (p + 1)::text, true);
  NEW.notification_id := p;
  NEW.recorded_by := session_user;
  NEW.recorded_at := clock_timestamp();  -- read under the head's lock: times follow positions
  RETURN NEW;
END $fn$"""


def _links_function(schema: str, events: str, *, times: bool) -> str:
    """Once per insert statement, before it returns: its rows' links, hashed in position order from the
    head's hash (the formula of the row trigger of version 1), inserted in one statement; the head
    moved once. A statement that inserted nothing leaves the head alone. With ``times`` (version 3)
    it also refuses a row stamped earlier than the one before it (the head's first)."""
    s = _q(schema)
    chain, head = f"{s}.{_q(CHAIN_TABLE)}", f"{s}.{_q(HEAD_TABLE)}"
    clock = """    IF r.recorded_at < last_at THEN
      RAISE EXCEPTION 'pgf: the database clock (%) is earlier than the last recorded event (%); nothing was written',
        r.recorded_at, last_at;
    END IF;
""" if times else ""
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
  SELECT position, hash, recorded_at INTO h FROM {head} WHERE id = 1 FOR UPDATE;
  digest := h.hash;
  last_at := h.recorded_at;
  FOR r IN SELECT notification_id, originator_id, originator_version, recorded_at,
                  {link_material_sql("", "0")} AS material FROM pgf_new ORDER BY notification_id LOOP
    n := n + 1;
    IF r.notification_id IS DISTINCT FROM h.position + n OR r.recorded_at IS NULL THEN  -- pgf_notarise did not run
      RAISE EXCEPTION 'pgf: an inserted event at position % (the chain''s next: %) was not stamped by the notary; '
        'nothing was written', r.notification_id, h.position + n;
    END IF;
{clock}    digest := sha256(digest || r.material);
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


def triggers_version(meta: dict[str, str]) -> str:
    """The notary's triggers version of a store, from its ``pgf_store`` rows: ``notary_triggers`` as
    created or first upgraded ("1" when absent), or a later upgrade's ``notary_triggers_<version>``
    (``pgf_store`` is append-only: an upgrade adds its rows and changes none)."""
    versions = [int(value) for key, value in meta.items()
                if key == TRIGGERS_KEY or (key.startswith(f"{TRIGGERS_KEY}_") and key[len(TRIGGERS_KEY) + 1:].isdigit())]
    return str(max(versions, default=1))


def upgrade_keys(meta: dict[str, str]) -> str:
    """The key under which an upgrade to the current triggers records itself (and its ``_at``/``_by``)."""
    return TRIGGERS_KEY if TRIGGERS_KEY not in meta else f"{TRIGGERS_KEY}_{TRIGGERS}"


def notary_trigger_names(triggers: str | None) -> list[str]:
    """The notary's triggers on the events table of a store whose ``pgf_store`` names ``triggers``
    (None: version 1)."""
    return {"3": ["pgf_notarise", "pgf_notarise_begin", "pgf_notarise_links"],
            "2": ["pgf_notarise", "pgf_notarise_links"]}.get(triggers or "1", ["pgf_notarise"])


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
