"""Site scope enforced by PostgreSQL itself: row-level security by site (issue 15).

A site-scoped grant (``pgf users grant li.na coordinator --site XQ``) limits a login to its sites'
patients in the application, and here in the database, so that connecting with psql changes nothing:

- every stored event row carries a ``site`` column, stamped by a ``BEFORE INSERT`` trigger
  (``SECURITY DEFINER``) that no login can steer: a patient's registration takes the site from its
  payload (in an encrypted store, where the database cannot read it, from the writing application's
  claim, which the policy then checks against the writer's grant); every later event of the stream
  takes its stream's site from ``pgf_stream_sites``, which the registration fills for the patient's
  stream and for its review stream (queries, verification, freeze: id ``uuid5(REVIEW_NAMESPACE,
  patient id)``, computed in SQL); other streams (the user directory, the lock, import batches) have
  no site and are store-wide;
- ``pgf_site_grants(login, role, sites)`` mirrors the directory's grants, written by ``pgf_set_role``
  in the transaction that records the grant; ``pgf_scope()`` is the session user's sites (NULL: every
  site: auditors, admins, grants without ``--site``, an open store);
- policies: a scoped login reads and inserts only event rows of its sites (or store-wide ones) and
  chain links of events it can read; the read-model tables (which mix every site's patients and are
  rebuilt by whoever catches them up) are neither readable nor writable by a scoped login: its status,
  lists and reports are derived from the events it can read (:mod:`pgf_events.projections.queries`).

``pgf db upgrade`` brings an older store up: the column, the tables, the functions and policies, and
every existing row's site (from its stream's registration), and the grants' sites from the directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgf_events.audit.chain import CHAIN_TABLE, META_TABLE
from pgf_events.audit.dbroles import role_prefix
from pgf_events.domain.review import REVIEW_NAMESPACE
from pgf_events.domain.users import SCOPED, UNSCOPED

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

SITES_TABLE = "pgf_stream_sites"
GRANTS_TABLE = "pgf_site_grants"
REGISTERED_TOPIC = "pgf_events.domain.patient:Patient.Registered"
PATIENT_PREFIX = "pgf_events.domain.patient:"
REVIEW_PREFIX = "pgf_events.domain.review:"
SITES_SETTING = "pgf.sites"  # the writing application's claims (encrypted stores): {"<patient uuid>": "SITE"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sha1_ddl(s: str) -> list[str]:
    """SHA-1 and uuid5 in PL/pgSQL (no extension needed): the review stream's id from the patient's."""
    mask = "4294967295"
    word = " | ".join(f"(get_byte(m, o + {j})::bigint << {24 - 8 * j})" for j in range(4))
    return [f"""CREATE OR REPLACE FUNCTION {s}.pgf_sha1(msg bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  h bigint[] := ARRAY[1732584193, 4023233417, 2562383102, 271733878, 3285377520]::bigint[];
  m bytea := msg || '\\x80'::bytea;
  w bigint[]; a bigint; b bigint; c bigint; d bigint; e bigint; f bigint; k bigint; t bigint; o int;
BEGIN
  WHILE octet_length(m) % 64 <> 56 LOOP m := m || '\\x00'::bytea; END LOOP;
  m := m || int8send(octet_length(msg)::bigint * 8);
  FOR chunk IN 0 .. octet_length(m) / 64 - 1 LOOP
    w := array_fill(0::bigint, ARRAY[80]);
    FOR i IN 0 .. 15 LOOP
      o := chunk * 64 + i * 4;
      w[i + 1] := {word};
    END LOOP;
    FOR i IN 16 .. 79 LOOP
      t := w[i - 2] # w[i - 7] # w[i - 13] # w[i - 15];
      w[i + 1] := ((t << 1) | (t >> 31)) & {mask};
    END LOOP;
    a := h[1]; b := h[2]; c := h[3]; d := h[4]; e := h[5];
    FOR i IN 0 .. 79 LOOP
      IF i < 20 THEN f := (b & c) | ((~b & {mask}) & d); k := 1518500249;
      ELSIF i < 40 THEN f := b # c # d; k := 1859775393;
      ELSIF i < 60 THEN f := (b & c) | (b & d) | (c & d); k := 2400959708;
      ELSE f := b # c # d; k := 3395469782;
      END IF;
      t := ((((a << 5) | (a >> 27)) & {mask}) + f + e + k + w[i + 1]) & {mask};
      e := d; d := c; c := ((b << 30) | (b >> 2)) & {mask}; b := a; a := t;
    END LOOP;
    h[1] := (h[1] + a) & {mask}; h[2] := (h[2] + b) & {mask}; h[3] := (h[3] + c) & {mask};
    h[4] := (h[4] + d) & {mask}; h[5] := (h[5] + e) & {mask};
  END LOOP;
  RETURN substring(int8send(h[1]) FROM 5) || substring(int8send(h[2]) FROM 5) || substring(int8send(h[3]) FROM 5)
      || substring(int8send(h[4]) FROM 5) || substring(int8send(h[5]) FROM 5);
END $fn$""",
            f"""CREATE OR REPLACE FUNCTION {s}.pgf_uuid5(ns uuid, name text) RETURNS uuid LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE d bytea := {s}.pgf_sha1(uuid_send(ns) || convert_to(name, 'UTF8'));
BEGIN
  d := set_byte(d, 6, (get_byte(d, 6) & 15) | 80);
  d := set_byte(d, 8, (get_byte(d, 8) & 63) | 128);
  RETURN encode(substring(d FROM 1 FOR 16), 'hex')::uuid;
END $fn$"""]


def scope_ddl(schema: str) -> list[str]:
    """The grants' sites and ``pgf_scope()``, the session user's sites (NULL: every site)."""
    s, prefix = _q(schema), role_prefix(schema)
    grants = f"{s}.{_q(GRANTS_TABLE)}"
    controlled = (f"EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                  f"WHERE r.rolname = {_lit(prefix + '_admin')})")
    unscoped = ", ".join(_lit(f"{prefix}_{r}") for r in UNSCOPED)
    scoped = ", ".join(_lit(f"{prefix}_{r}") for r in SCOPED)
    return [
        f"CREATE TABLE IF NOT EXISTS {grants} (login text NOT NULL, role text NOT NULL, sites text[], "
        "PRIMARY KEY (login, role))",
        # Roles are looked up in pg_roles (a store made before a role existed lacks it: no error).
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_scope() RETURNS text[] LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
SELECT CASE
  WHEN NOT {controlled} THEN NULL
  WHEN EXISTS (SELECT 1 FROM pg_roles pr WHERE pr.rolname IN ({unscoped})
               AND pg_has_role(session_user, pr.oid, 'USAGE')) THEN NULL
  WHEN EXISTS (SELECT 1 FROM pg_roles pr WHERE pr.rolname IN ({scoped}) AND pg_has_role(session_user, pr.oid, 'USAGE')
               AND NOT EXISTS (SELECT 1 FROM {grants} g WHERE g.login = session_user
                               AND {_lit(prefix + '_')} || g.role = pr.rolname AND g.sites IS NOT NULL)) THEN NULL
  ELSE coalesce((SELECT array_agg(DISTINCT x) FROM {grants} g
                 JOIN pg_roles pr ON pr.rolname = {_lit(prefix + '_')} || g.role, unnest(g.sites) x
                 WHERE g.login = session_user AND pg_has_role(session_user, pr.oid, 'USAGE')), '{{}}'::text[])
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_scope() FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {s}.pgf_scope() TO PUBLIC",
        # Called by pgf_set_role, in the transaction that records the grant or revocation.
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_set_sites(who text, what text, give boolean, covers text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF give THEN
    INSERT INTO {grants} AS g (login, role, sites) VALUES (who, what, covers)
      ON CONFLICT (login, role) DO UPDATE SET sites = EXCLUDED.sites;
  ELSE
    DELETE FROM {grants} g WHERE g.login = who AND g.role = what;
  END IF;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_set_sites(text, text, boolean, text[]) FROM PUBLIC",
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_set_role(login text, role text, give boolean, sites text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM {s}.pgf_set_role(login, role, give);
  PERFORM {s}.pgf_set_sites(login, role, give, sites);
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_set_role(text, text, boolean, text[]) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {s}.pgf_set_role(text, text, boolean, text[]) TO PUBLIC",
    ]


def sites_ddl(schema: str, events: str) -> list[str]:
    """Statements (run by the owner, idempotent) that stamp sites and restrict scoped logins to theirs."""
    s, e = _q(schema), _q(events)
    sites, chain = f"{s}.{_q(SITES_TABLE)}", f"{s}.{_q(CHAIN_TABLE)}"
    scope = f"(SELECT {s}.pgf_scope())"  # an InitPlan: evaluated once per statement, not per row
    visible = f"({scope} IS NULL OR site IS NULL OR site = ANY({scope}::text[]))"
    return [
        *sha1_ddl(s),
        *scope_ddl(schema),
        f"ALTER TABLE {s}.{e} ADD COLUMN IF NOT EXISTS site text",
        f"CREATE TABLE IF NOT EXISTS {sites} (stream uuid PRIMARY KEY, site text NOT NULL)",
        # enable_seqscan = off: the stream's site by its index whatever the statistics say (pg_notary).
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_stamp_site() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
DECLARE
  known text;
  body jsonb;
BEGIN
  SELECT site INTO known FROM {sites} WHERE stream = NEW.originator_id;
  IF FOUND THEN
    NEW.site := known;
    RETURN NEW;
  END IF;
  IF NEW.topic = {_lit(REGISTERED_TOPIC)} AND NEW.originator_version = 1 THEN
    BEGIN
      body := convert_from(NEW.state, 'UTF8')::jsonb;
    EXCEPTION WHEN others THEN
      body := NULL;  -- an encrypted payload: the application's claim, checked against the writer's grant
    END;
    IF body IS NOT NULL THEN
      known := upper(body #>> '{{record,_data_,site}}');
    ELSE
      known := upper(current_setting({_lit(SITES_SETTING)}, true)::jsonb ->> NEW.originator_id::text);
    END IF;
    IF known IS NULL OR known = '' THEN
      RAISE EXCEPTION 'pgf: the registration of stream % names no site; nothing was written', NEW.originator_id;
    END IF;
    INSERT INTO {sites} (stream, site) VALUES (NEW.originator_id, known),
      ({s}.pgf_uuid5({_lit(str(REVIEW_NAMESPACE))}::uuid, NEW.originator_id::text), known)
      ON CONFLICT (stream) DO NOTHING;
    NEW.site := known;
    RETURN NEW;
  END IF;
  IF NEW.topic LIKE {_lit(PATIENT_PREFIX + '%')} OR NEW.topic LIKE {_lit(REVIEW_PREFIX + '%')} THEN
    RAISE EXCEPTION 'pgf: stream % belongs to no registered patient; nothing was written', NEW.originator_id;
  END IF;
  NEW.site := NULL;  -- store-wide: the user directory, the lock, import batches
  RETURN NEW;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_stamp_site() FROM PUBLIC",
        # What a refusal names (the application's "S001 is at site PKU"): the site of one stream, no more.
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_site_of(stream uuid) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$ SELECT site FROM {sites} WHERE stream = pgf_site_of.stream $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_site_of(uuid) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {s}.pgf_site_of(uuid) TO PUBLIC",
        f"CREATE OR REPLACE TRIGGER pgf_stamp_site BEFORE INSERT ON {s}.{e} FOR EACH ROW "
        f"EXECUTE FUNCTION {s}.pgf_stamp_site()",
        f"DROP POLICY IF EXISTS pgf_read ON {s}.{e}",
        f"CREATE POLICY pgf_read ON {s}.{e} FOR SELECT USING {visible}",
        f"DROP POLICY IF EXISTS pgf_write ON {s}.{e}",
        f"CREATE POLICY pgf_write ON {s}.{e} FOR INSERT WITH CHECK ({s}.pgf_may_write(originator_id, topic) "
        f"AND {visible})",
        f"ALTER TABLE {chain} ENABLE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS pgf_read ON {chain}",
        f"CREATE POLICY pgf_read ON {chain} FOR SELECT USING ({scope} IS NULL OR EXISTS "
        f"(SELECT 1 FROM {s}.{e} x WHERE x.notification_id = position))",
        # The read models: every site's patients in one table, rebuilt by whoever catches up: unscoped logins only.
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_scope_read_models() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE t text;
BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = {_lit(schema)}
      AND (tablename LIKE 'pgf\\_view\\_%' OR tablename IN ('pgf_changes', 'pgf_projection_tracking',
                                                         'pgf_read_model_checks')) LOOP
    EXECUTE format('ALTER TABLE {s}.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS pgf_unscoped ON {s}.%I', t);
    EXECUTE format('CREATE POLICY pgf_unscoped ON {s}.%I USING ({scope} IS NULL) WITH CHECK ({scope} IS NULL)', t);
  END LOOP;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_scope_read_models() FROM PUBLIC",
    ]


def upgrade_site_scope(app: TrialConduct) -> int | None:
    """``pgf db upgrade`` (the schema owner): add the site scope to a store made before it; returns how
    many stored rows got their site, or None if the store has it already. One transaction, logged in
    ``pgf_store``: the DDL, each registered stream's site (and its review stream's), every row's site
    (the append-only trigger is off for that one UPDATE, which changes no chained column), and the
    grants' sites from the user directory."""
    from psycopg.sql import SQL, Identifier  # noqa: PLC0415

    from pgf_events.domain.patient import Patient  # noqa: PLC0415
    from pgf_events.domain.review import review_id  # noqa: PLC0415
    from pgf_events.log import notifications  # noqa: PLC0415
    from pgf_events.topics import topic_of  # noqa: PLC0415

    recorder: Any = app.recorder
    if recorder.meta.get("site_scope"):
        return None
    schema, events = recorder.datastore.schema, recorder.events_table_name
    q = {"s": Identifier(schema), "e": Identifier(events), "sites": Identifier(SITES_TABLE),
         "meta": Identifier(META_TABLE)}
    streams: list[tuple[Any, str]] = []
    for n in notifications(recorder, topics=[topic_of(Patient.Registered)]):
        event = app.mapper.to_domain_event(n)
        site = str(event.record.site).upper()  # type: ignore[attr-defined]
        streams += [(event.originator_id, site), (review_id(event.originator_id), site)]
    directory = app.directory()
    grants = [(user, role, sorted(sites)) for user, by_role in (directory.sites.items() if directory else [])
              for role, sites in by_role.items() if sites]
    with recorder.datastore.transaction(commit=True) as c:
        for statement in sites_ddl(schema, events):
            c.execute(statement)
        c.executemany(SQL("INSERT INTO {s}.{sites} (stream, site) VALUES (%s, %s) ON CONFLICT (stream) DO NOTHING")
                      .format(**q), streams)
        c.execute(SQL("ALTER TABLE {s}.{e} DISABLE TRIGGER pgf_append_only").format(**q))
        c.execute(SQL("UPDATE {s}.{e} x SET site = y.site FROM {s}.{sites} y WHERE y.stream = x.originator_id "
                      "AND x.site IS NULL").format(**q))
        updated = c.rowcount
        c.execute(SQL("ALTER TABLE {s}.{e} ENABLE TRIGGER pgf_append_only").format(**q))
        c.executemany(SQL("INSERT INTO {s}.pgf_site_grants (login, role, sites) VALUES (%s, %s, %s) "
                          "ON CONFLICT (login, role) DO UPDATE SET sites = EXCLUDED.sites").format(**q), grants)
        c.execute(SQL("INSERT INTO {s}.{meta} (key, value) VALUES ('site_scope', '1')").format(**q))
    recorder.meta = recorder.read_meta()
    return int(updated)
