"""pgf roles as PostgreSQL roles, granted to logins and enforced by the database itself.

Each store (schema) has five NOLOGIN roles, ``pgf_<schema>_<role>`` for the roles of
:mod:`pgf_events.domain.users`, created with the store by its owner (who needs CREATEROLE). People
log in as themselves (one login per person); ``pgf users grant li.na coordinator`` runs
``GRANT pgf_<schema>_coordinator TO "li.na"`` and records the event, in one transaction.

Like an embedded store, a new store is *open*: its privileges go to PUBLIC (every login of the
database may use it, always as itself). The first grant must make someone an admin; it switches
access control on, in the database: PUBLIC loses every privilege and only the roles keep theirs:

- every role: read the events, the chain, the head and ``pgf_store`` (verify, history, exports),
  and read and write the read-model tables (report, status, follow catch them up; they are
  derived data, checked by ``pgf projections verify``);
- every role but auditor: INSERT the four payload columns of the events table (the notary trigger
  fills the rest); row-level security lets only coordinators and investigators write patient
  records, only investigators signatures, only admins the user directory, and the other writing
  roles their own aggregates (queries, source verification, freezes, locks);
- admin: runs ``pgf_set_role`` (grant and revoke); nothing may UPDATE, DELETE or TRUNCATE anything.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pgf_events.audit.chain import CHAIN_TABLE, HEAD_TABLE, META_TABLE
from pgf_events.domain.errors import StoreError
from pgf_events.domain.users import DIRECTORY_ID, ROLES

if TYPE_CHECKING:
    from pgf_events.application import TrialConduct

WRITERS = tuple(r for r in ROLES if r != "auditor")  # may INSERT events; row-level security says which
SIGNED_TOPIC = "pgf_events.domain.patient:Patient.Signed"
PROTECTED = (CHAIN_TABLE, HEAD_TABLE, META_TABLE)  # no login writes these; the notary's triggers do
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def role_prefix(schema: str) -> str:
    prefix = f"pgf_{schema.lower()}"
    if not _NAME_RE.match(prefix) or len(prefix) > 63 - len("_investigator"):
        raise StoreError(f"the schema name {schema!r} is too long or unusual to name its roles (pgf_<schema>_<role>)")
    return prefix


def role_name(schema: str, role: str) -> str:
    return f"{role_prefix(schema)}_{role}"


def roles_ddl(schema: str, events: str) -> list[str]:
    """Roles, row-level security and the two functions; run by the owner when the store is created."""
    s, e, prefix = _q(schema), _q(events), role_prefix(schema)
    create = " ".join(
        f"BEGIN CREATE ROLE {_q(f'{prefix}_{r}')} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END;"
        for r in ROLES
    )
    has = lambda role: f"pg_has_role(session_user, {_lit(f'{prefix}_{role}')}, 'USAGE')"  # noqa: E731
    controlled = (f"EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                  f"WHERE r.rolname = {_lit(prefix + '_admin')})")
    everyone = ", ".join(_q(f"{prefix}_{r}") for r in ROLES)
    writers = ", ".join(_q(f"{prefix}_{r}") for r in WRITERS)
    protected = ", ".join(_lit(t) for t in (*PROTECTED, events))
    return [
        f"DO $do$ BEGIN {create} END $do$",
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_may_write(oid uuid, topic text) RETURNS boolean LANGUAGE sql
STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
SELECT CASE WHEN NOT {controlled} THEN true
  WHEN oid = {_lit(str(DIRECTORY_ID))}::uuid THEN {has('admin')}
  WHEN topic = {_lit(SIGNED_TOPIC)} THEN {has('investigator')}
  WHEN topic LIKE 'pgf_events.domain.patient:%' THEN {has('coordinator')} OR {has('investigator')}
  ELSE {" OR ".join(has(r) for r in WRITERS)} END $fn$""",
        f"ALTER TABLE {s}.{e} ENABLE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS pgf_read ON {s}.{e}",
        f"CREATE POLICY pgf_read ON {s}.{e} FOR SELECT USING (true)",
        f"DROP POLICY IF EXISTS pgf_write ON {s}.{e}",
        f"CREATE POLICY pgf_write ON {s}.{e} FOR INSERT WITH CHECK ({s}.pgf_may_write(originator_id, topic))",
        # (Re)issue every privilege: to PUBLIC while the store is open, to the roles once controlled.
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_grants(open boolean) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t text;
  every text := CASE WHEN open THEN 'PUBLIC' ELSE {_lit(everyone)} END;
  writing text := CASE WHEN open THEN 'PUBLIC' ELSE {_lit(writers)} END;
BEGIN
  EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC';
  EXECUTE 'GRANT USAGE ON SCHEMA {s} TO ' || every;
  EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO ' || every;
  EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO ' || every;
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = {_lit(schema)} AND tablename NOT IN ({protected}) LOOP
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON {s}.%I TO ', t) || every;
  END LOOP;
  EXECUTE 'GRANT INSERT (originator_id, originator_version, topic, state) ON {s}.{e} TO ' || writing;
  IF NOT open THEN
    EXECUTE 'REVOKE USAGE ON SCHEMA {s} FROM PUBLIC';
  END IF;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_grants(boolean) FROM PUBLIC",
        f"""CREATE OR REPLACE FUNCTION {s}.pgf_set_role(login text, role text, give boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  target text := {_lit(prefix + '_')} || role;
  was_controlled boolean := {controlled};
BEGIN
  IF role NOT IN ({", ".join(_lit(r) for r in ROLES)}) THEN
    RAISE EXCEPTION 'pgf: unknown role %', role;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login AND rolcanlogin) THEN
    RAISE EXCEPTION 'pgf: there is no database login %: one login per person, created by your database administrator', login;
  END IF;
  IF was_controlled AND NOT {has('admin')} THEN
    RAISE EXCEPTION 'pgf: % may not grant or revoke roles: it needs the admin role', session_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT was_controlled AND NOT (give AND role = 'admin') THEN
    RAISE EXCEPTION 'pgf: the first grant must make someone an admin (it switches access control on)';
  END IF;
  IF give THEN
    EXECUTE format('GRANT %I TO %I', target, login);
  ELSE
    IF role = 'admin' AND (SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
                           WHERE r.rolname = target) <= 1 THEN
      RAISE EXCEPTION 'pgf: % is the last admin; grant another admin first', login;
    END IF;
    EXECUTE format('REVOKE %I FROM %I', target, login);
  END IF;
  IF NOT was_controlled THEN
    PERFORM {s}.pgf_grants(false);
  END IF;
END $fn$""",
        f"REVOKE ALL ON FUNCTION {s}.pgf_set_role(text, text, boolean) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {s}.pgf_set_role(text, text, boolean) TO PUBLIC",
    ]


def controlled(app: TrialConduct) -> bool:
    prefix = role_prefix(app.store.schema or "public")
    with app.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        c.execute("SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                  "WHERE r.rolname = %s) AS yes", (prefix + "_admin",))
        return bool(c.fetchone()["yes"])


def roles_held(app: TrialConduct, user: str) -> set[str] | None:
    """The pgf roles the database gives ``user`` (None while the store is open)."""
    if not controlled(app):
        return None
    prefix = role_prefix(app.store.schema or "public")
    with app.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        c.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(%s, oid, 'USAGE')",
                  ([f"{prefix}_{r}" for r in ROLES], user))
        return {row["rolname"][len(prefix) + 1:] for row in c.fetchall()}


def set_role_statement(app: TrialConduct, user: str, role: str, give: bool,
                       sites: list[str] | None = None) -> tuple[Any, tuple[Any, ...]]:
    """The call that grants or revokes, run in the transaction that records the event; on a store with
    the site scope (:mod:`pgf_events.audit.pg_sites`) it also records the grant's sites for the database."""
    from psycopg.sql import SQL, Identifier  # noqa: PLC0415

    schema = app.store.schema or "public"
    if app.recorder.meta.get("site_scope"):  # type: ignore[attr-defined]
        clean = sorted({s.strip().upper() for s in sites}) if sites else None
        return (SQL("SELECT {0}.pgf_set_role(%s, %s, %s, %s)").format(Identifier(schema)),
                (user, role, give, clean))
    return SQL("SELECT {0}.pgf_set_role(%s, %s, %s)").format(Identifier(schema)), (user, role, give)
